"""Which environment variables are configuration: CASCADE_<SECTION>__<KEY> for a real section;
other CASCADE_* names belong to someone else and are left alone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cascade.errors import ConfigError
from cascade.wiring.settings import load_config


def test_a_section_variable_sets_its_key_and_says_where_it_came_from(tmp_path: Path) -> None:
    loaded = load_config(tmp_path, environ={"CASCADE_SANDBOX__BACKEND": "local"})
    assert loaded.config.sandbox.backend == "local"
    assert loaded.origin("sandbox.backend") == "env CASCADE_SANDBOX__BACKEND"


def test_other_cascade_variables_are_not_cascade_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {
        "CASCADE_TOKEN": "x",
        "CASCADE_HOME": "/opt/other-tool",
        "CASCADE_RUN": "nightly",  # a section's bare name is no setting either
        "CASCADE_SANDBX__BACKEND": "l",
    }
    with caplog.at_level(logging.WARNING):
        loaded = load_config(tmp_path, environ=env)
    assert loaded.config.sandbox.backend == "docker"
    # A setting-shaped name with an unknown section is likely a typo: said, not fatal.
    assert [r.getMessage() for r in caplog.records] == [
        "CASCADE_SANDBX__BACKEND is not a cascade setting (no [sandbx] section): ignored"
    ]


def test_a_misspelt_key_inside_a_section_is_an_error_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CASCADE_SANDBOX__BACKND"):
        load_config(tmp_path, environ={"CASCADE_SANDBOX__BACKND": "local"})


def test_the_older_gate_pytest_table_is_still_the_pytest_evaluators_options(
    tmp_path: Path,
) -> None:
    from cascade.wiring.registry import build_evaluator
    from evaluators.pytest_gate import PytestEvaluator

    toml = tmp_path / "cascade.toml"
    toml.write_text(
        '[gate.pytest]\ntimeout = 5\nargs = ["-x"]\n[gate.options.pytest]\ntimeout = 7\n'
    )
    loaded = load_config(tmp_path, environ={})
    assert loaded.config.gate.options["pytest"] == {"timeout": 7, "args": ["-x"]}
    assert loaded.origin("gate.options.pytest.args") == str(toml)
    evaluator = build_evaluator("pytest", loaded.config.gate)
    assert isinstance(evaluator, PytestEvaluator)
    assert (evaluator.config.timeout, evaluator.config.args) == (7, ("-x",))
