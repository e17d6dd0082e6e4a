"""`cascade --help` and `--version` load the command line and nothing heavy: no pydantic model,
no litellm, no docker SDK, no rich progress — those come with the command that needs them (the
time is measured in benchmarks/startup.py; this says what is imported, which the time follows)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pydantic", "litellm", "docker", "rich.progress", "cascade.records", "cascade.config")

PROBE = """
import sys
from typer.testing import CliRunner
from cascade.cli.main import app
for args in (["--help"], ["--version"], ["-h"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
heavy = sorted({m.split(".")[0] if not m.startswith("cascade") else m for m in sys.modules
                if m.startswith(HEAVY)})
print(" ".join(heavy))
"""


def test_help_and_version_import_nothing_heavy() -> None:
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == [], out.stdout
