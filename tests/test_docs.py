"""The configuration shown in the README and docs is configuration cascade accepts: every
```toml block parses and validates as a `cascade.toml`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cascade.wiring.settings import load_config

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    pytest.param(block, id=f"{path.name}#{n}")
    for path in DOCS
    for n, block in enumerate(re.findall(r"```toml\n(.*?)```", path.read_text(), re.DOTALL), 1)
]


@pytest.mark.parametrize("block", BLOCKS)
def test_the_shown_config_is_accepted(block: str, tmp_path: Path) -> None:
    (tmp_path / "cascade.toml").write_text(block)
    load_config(tmp_path, None)
