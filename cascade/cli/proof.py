"""`cascade proof verify RUN [--key PUB]` checks a run's proof (and, with a key, who sealed it);
`cascade proof keygen` makes the Ed25519 key pair that signs receipts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from cascade.cli.failures import reported
from cascade.cli.options import SandboxOption

proof_app = typer.Typer(
    rich_markup_mode=None,
    help="Check the proof of a run, and make the key that signs it.",
    no_args_is_help=True,
)


@proof_app.command("verify")
def verify(  # noqa: PLR0917 - typer maps each parameter to a flag
    run_dir: Annotated[Path, typer.Argument(help="A run folder, .cascade/runs/<id>")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="An Ed25519 public key (PEM, as `cascade proof keygen` writes it, or an "
            "OpenSSH line): the receipt must carry a signature that verifies under it.",
        ),
    ] = None,
    reexecute: Annotated[
        bool,
        typer.Option(
            "--reexecute",
            help="Also apply the run's recorded patches again at its base commit, each in a "
            "fresh sandbox, and run the gate (as --repo's configuration has it now): exit 1 if "
            "any verdict comes out differently. No model is called.",
        ),
    ] = False,
    repo: Annotated[
        Path, typer.Option(help="With --reexecute: the repository of the run.")
    ] = Path(),
    config: Annotated[Path | None, typer.Option(help="With --reexecute: a config file.")] = None,
    sandbox: SandboxOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='One object on stdout: {"verify": {ok, problems, signing, …}, "reexecute": '
            "{patches, changed, …} or null}; the exit code as without it.",
        ),
    ] = False,
) -> None:
    """Check the hash chain, every blob's digest, the receipt and what it seals; exit 0 only when
    intact. Without --key a signed receipt's signature is not checked (it says who signed);
    an unsigned one is tamper-evident, not authenticated.

    Exit codes: 0 intact (and, with --key, signed by that key; with --reexecute, every verdict
    the same), 1 not, 2 usage, 3 infrastructure (with --reexecute: a patch could not be applied
    or gated again)."""
    from cascade.proof.signing import load_public_key
    from cascade.proof.verify import format_report, verify_run

    if not run_dir.is_dir():
        typer.echo(f"error: {run_dir} is not a run folder", err=True)
        raise typer.Exit(2)
    with reported():
        public = load_public_key(key) if key is not None else None
    report = verify_run(run_dir, public)
    if not as_json:
        typer.echo(format_report(report))
    if not report.ok or not reexecute:
        if as_json:
            typer.echo(json.dumps({"verify": report.model_dump(mode="json"), "reexecute": None}))
        raise typer.Exit(0 if report.ok else 1)
    from cascade.cli.regate import regate_folder
    from cascade.replay.regate import render_regate

    with reported():
        result = regate_folder(run_dir, repo, config, sandbox, 1)
    data = result.to_json()
    if as_json:
        typer.echo(json.dumps({"verify": report.model_dump(mode="json"), "reexecute": data}))
    else:
        typer.echo(render_regate(result))
    if data["errors"] or data["skipped"]:
        _say(as_json, "re-executed: some patches could not be judged again (see above)")
        raise typer.Exit(3)
    if data["changed"]:
        why = (
            "the gate is configured otherwise now (see above)"
            if data["gate_differs"]
            else "with the gate configured as recorded"
            if not data["gate_unrecorded"]
            else "see above"
        )
        _say(as_json, f"re-executed: the verdicts are not reproduced ({why})")
        raise typer.Exit(1)
    said = "every verdict is the same" if data["patches"] else "no patch was gated in this run"
    _say(as_json, f"re-executed: {said}")


def _say(as_json: bool, line: str) -> None:
    """The closing line: on stdout with the report, on stderr when stdout is JSON."""
    typer.echo(line, err=as_json)


@proof_app.command("keygen")
def keygen(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to write the private key (its public key goes to OUT.pub); default "
            "$XDG_CONFIG_HOME/cascade/proof.key (~/.config/cascade/proof.key).",
        ),
    ] = None,
) -> None:
    """Make an Ed25519 key pair that signs each run's receipt: the private key (PEM, mode 0600;
    an existing file is never overwritten) and OUT.pub. Point `[proof] key` (or
    CASCADE_PROOF__KEY) at the private key; give the .pub to whoever checks the runs."""
    from cascade.proof.signing import generate_key

    path = out if out is not None else _default_key_path()
    with reported():
        private, public, keyid = generate_key(path)
    typer.echo(f"wrote {private} (private: keep it secret, outside the repository)")
    typer.echo(f"wrote {public} (public: `cascade proof verify RUN --key {public}`)")
    typer.echo(f"keyid {keyid}")
    typer.echo(f'sign runs with it: [proof] key = "{private}" in cascade.toml, or')
    typer.echo(f"  CASCADE_PROOF__KEY={private}")


def _default_key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cascade" / "proof.key"
