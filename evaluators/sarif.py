"""SARIF 2.1.0 for the gate's artifacts: read findings out of ruff's SARIF, make its absolute
`file://` URIs repo-relative, write SARIF for mypy (which has none), and mark each result new or
unchanged against the baseline (`baselineState`)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from evaluators.findings import ToolFinding, relative

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"


class SarifError(ValueError):
    """The text is not the SARIF a tool was expected to write."""


def load(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SarifError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise SarifError("no `runs` in the SARIF document")
    return doc


def relativize(doc: Any, roots: Sequence[str]) -> Any:
    """A copy with every `file://` URI under a root made relative to `%SRCROOT%` (the repo)."""
    if isinstance(doc, list):
        return [relativize(item, roots) for item in doc]
    if not isinstance(doc, dict):
        return doc
    out = {key: relativize(value, roots) for key, value in doc.items()}
    uri = out.get("uri")
    if isinstance(uri, str) and uri.startswith("file://"):
        path = unquote(urlsplit(uri).path)
        rel = relative(path, roots)
        if rel != path:
            out["uri"] = quote(rel)
            out["uriBaseId"] = SRCROOT
    return out


def findings(doc: dict[str, Any]) -> list[ToolFinding]:
    """One finding per result, in order (the index is the result's index in its run)."""
    found: list[ToolFinding] = []
    for result in _results(doc):
        location = (result.get("locations") or [{}])[0].get("physicalLocation", {})
        region = location.get("region", {})
        found.append(
            ToolFinding(
                path=unquote(location.get("artifactLocation", {}).get("uri", "")),
                line=int(region.get("startLine", 0)),
                column=int(region.get("startColumn", 0)),
                rule=str(result.get("ruleId") or "syntax"),
                message=str(result.get("message", {}).get("text", "")),
            )
        )
    return found


def mark(
    doc: dict[str, Any], new: Collection[int], advisory: Collection[int] = ()
) -> dict[str, Any]:
    """Set `baselineState` on every result: "new" for these indices, else "unchanged"; and
    `level` "note" on the `advisory` ones (their rule does not block)."""
    for i, result in enumerate(_results(doc)):
        result["baselineState"] = "new" if i in new else "unchanged"
        if i in advisory:
            result["level"] = "note"
    return doc


def build(tool: str, uri: str, found: Sequence[ToolFinding]) -> dict[str, Any]:
    """A SARIF document for a tool that writes none."""
    rules = sorted({f.rule for f in found})
    results = [
        {
            "ruleId": f.rule,
            "level": "error",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": quote(f.path), "uriBaseId": SRCROOT},
                        **({"region": _region(f)} if f.line > 0 else {}),
                    }
                }
            ],
        }
        for f in found
    ]
    driver = {"name": tool, "informationUri": uri, "rules": [{"id": r} for r in rules]}
    run = {"tool": {"driver": driver}, "results": results}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def _region(f: ToolFinding) -> dict[str, int]:
    return {"startLine": f.line, **({"startColumn": f.column} if f.column > 0 else {})}


def _results(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for run in doc.get("runs", []) for r in run.get("results", []) or []]
