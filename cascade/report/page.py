"""A report document as one self-contained HTML page: the CSS inline, every chart a base64 data
URI, no script and nothing fetched, so the file can be mailed or attached and still render.
Every piece of text is escaped: task titles come from issues, which anyone can write."""

from __future__ import annotations

import base64
from html import escape

from cascade.report.document import (
    Block,
    Bullets,
    Cell,
    Code,
    Document,
    Images,
    Link,
    Mark,
    Table,
    Text,
)

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.6rem; margin-bottom: .5rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
.headline { font-size: 1.15rem; font-weight: 600; background: #f3f8f2; padding: .8rem 1rem;
            border-left: 4px solid #2da44e; }
.meta, .note { color: #57606a; font-size: .9rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { white-space: nowrap; }
.ok { color: #1a7f37; } .bad { color: #cf222e; font-weight: 600; }
pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; font-size: .85rem; }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
"""

NUMBER = ' class="num"'


def html_page(doc: Document) -> str:
    body = [f"<h1>{escape(doc.title)}</h1>"]
    for section in doc.sections:
        attrs = f' id="{escape(section.id)}"' if section.id else ""
        body.append(f"<section{attrs}>")
        if section.title:
            body.append(f"<h2>{escape(section.title)}</h2>")
        body += [_block(block, lead=not section.title) for block in section.blocks]
        body.append("</section>")
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(doc.title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _id(value: str) -> str:
    return f' id="{escape(value)}"' if value else ""


def _block(block: Block, *, lead: bool) -> str:
    if isinstance(block, Code):
        return f"<pre><code>{escape(block.text)}</code></pre>"
    if isinstance(block, Text):
        cls = ' class="headline"' if block.strong else ' class="meta"' if lead else ""
        return f"<p{_id(block.id)}{cls}>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        items = "".join(f"<li>{escape(item)}</li>" for item in block.items)
        return f"<ul>{items}</ul>" if items else ""
    if isinstance(block, Images):
        parts = [
            f'<figure><img alt="{escape(path.stem.replace("_", " "))}" '
            f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode("ascii")}">'
            "</figure>"
            for path in block.files
        ]
        parts += [f'<p class="note">{escape(note)}</p>' for note in block.skipped]
        return "\n".join(parts)
    return _table(block)


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.head)
    rows = []
    for row in table.rows:
        cells = "".join(
            f"<td{NUMBER if i in table.right else ''}>{_cell(value)}</td>"
            for i, value in enumerate(row)
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f"<table{_id(table.id)}><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _cell(value: Cell) -> str:
    if isinstance(value, Link):
        return f'<a href="{escape(value.href)}">{escape(value.text)}</a>'
    if isinstance(value, Mark):
        mark = "✓" if value.ok else "✗"
        return f'<span class="{"ok" if value.ok else "bad"}">{mark} {escape(value.text)}</span>'
    if isinstance(value, tuple):
        return " · ".join(_cell(link) for link in value)
    return escape(value)
