"""Signed receipts and the canonical encoding: a key pair from `cascade proof keygen`, a run sealed
by the real proof writer with a signer, and then every way to change it — one byte anywhere, a
forged chain re-sealed without the key or with another, a wrong key — each named by `cascade
proof verify`. Also runs sealed the old way (schema 2, a plain Statement) and aborted runs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.errors import InfraError, UsageError
from cascade.proof.log import ProofLog, canonical_json
from cascade.proof.run_folder import RunFolder
from cascade.proof.signing import (
    PAYLOAD_TYPE,
    envelope,
    generate_key,
    load_public_key,
    load_signer,
    pae,
    read_receipt,
)
from cascade.proof.verify import VerifyReport, format_report, verify_run
from tests.test_proof import _attempt, _seal, _write_run, edit_statement, statement

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public, _ = generate_key(tmp_path / "keys" / "proof.key")
    return private, public


def _signed_run(tmp_path: Path, private: Path, name: str = "runs") -> Path:
    log, attempts = _write_run(tmp_path / name, signer=load_signer(private))
    _seal(log, attempts)
    return log.run_dir


def _check(run_dir: Path, public: Path | None) -> VerifyReport:
    return verify_run(run_dir, load_public_key(public) if public else None)


def _fails(report: VerifyReport, first: str) -> None:
    assert not report.ok, format_report(report)
    assert report.problems[0].startswith(first), format_report(report)


# --- the envelope and the keys -------------------------------------------------------------------


def test_pae_is_the_dsse_specs_encoding() -> None:
    # The test vector of the DSSE protocol: lengths in bytes, decimal, space-separated.
    got = pae("http://example.com/HelloWorld", b"hello world")
    assert got == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("tÿpe", b"") == "DSSEv1 5 tÿpe 0 ".encode()


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    out = tmp_path / "k" / "proof.key"
    result = runner.invoke(app, ["proof", "keygen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    pub = tmp_path / "k" / "proof.key.pub"
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    # The keyid is the OpenSSH SHA256 fingerprint of the public key, as `ssh-keygen -lf` says.
    key = serialization.load_pem_public_key(pub.read_bytes())
    wire = base64.b64decode(
        key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).split()[1]
    )
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")
    assert f"keyid {fingerprint}" in result.output
    assert load_public_key(pub).keyid == load_signer(out).keyid == fingerprint
    before = out.read_bytes()
    again = runner.invoke(app, ["proof", "keygen", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert out.read_bytes() == before


def test_keygen_defaults_to_the_users_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    result = runner.invoke(app, ["proof", "keygen"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "config" / "cascade" / "proof.key").is_file()
    assert (tmp_path / "config" / "cascade" / "proof.key.pub").is_file()


def test_a_signature_round_trips_and_binds_the_payload_type(keys: tuple[Path, Path]) -> None:
    private, public = keys
    payload = canonical_json({"_type": "x", "é": 1.5})
    sealed = envelope(payload, load_signer(private))
    receipt = read_receipt(canonical_json(sealed))
    key = load_public_key(public)
    assert receipt.payload == payload and receipt.statement == {"_type": "x", "é": 1.5}
    assert receipt.signatures[0].keyid == key.keyid
    assert key.verifies(receipt.signatures[0].sig, pae(PAYLOAD_TYPE, payload))
    assert not key.verifies(receipt.signatures[0].sig, pae("text/plain", payload))
    assert not key.verifies(receipt.signatures[0].sig, payload)
    assert envelope(payload, None)["signatures"] == []


def test_base64_with_stray_bits_is_not_a_receipt() -> None:
    # Two strings that decode to the same bytes: only the canonical one is accepted, so no edit
    # of the envelope's base64 leaves what was signed unchanged.
    sealed = envelope(canonical_json({"_type": "x"}), None)
    payload = sealed["payload"]
    assert payload.endswith("=")
    last = payload.rstrip("=")[-1]
    sealed["payload"] = payload.rstrip("=")[:-1] + chr(ord(last) + 1) + "=" * payload.count("=")
    assert base64.b64decode(sealed["payload"]) == base64.b64decode(payload)
    with pytest.raises(ValueError, match="not canonical base64"):
        read_receipt(canonical_json(sealed))


def test_keys_that_cannot_sign_or_check_are_named(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    with pytest.raises(UsageError, match="no such key file"):
        load_signer(tmp_path / "missing")
    with pytest.raises(UsageError, match="is a public key"):
        load_signer(public)
    with pytest.raises(UsageError, match="is a private key; --key takes the public key"):
        load_public_key(private)
    other = tmp_path / "rsa.pem"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(UsageError, match="holds a RSA key; receipts are signed with Ed25519"):
        load_signer(other)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(UsageError, match="is encrypted"):
        load_signer(locked)
    # An OpenSSH public key line works as --key too.
    ssh = tmp_path / "proof.key.ssh"
    ssh.write_bytes(
        load_public_key(public).key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    assert load_public_key(ssh).keyid == load_public_key(public).keyid


# --- a signed run --------------------------------------------------------------------------------


def test_a_signed_run_verifies_with_its_public_key(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    raw = (run_dir / "receipt.intoto.json").read_bytes()
    assert raw == rfc8785.dumps(json.loads(raw)) + b"\n"
    assert json.loads(raw)["payloadType"] == "application/vnd.in-toto+json"
    report = _check(run_dir, public)
    assert report.ok and report.signing == "authenticated", format_report(report)
    keyid = load_public_key(public).keyid
    assert (
        format_report(report).splitlines()[-1] == f"authenticated: signed by {keyid}, the key given"
    )
    unchecked = _check(run_dir, None)
    assert unchecked.ok
    assert format_report(unchecked).splitlines()[-1] == (
        f"signed by {keyid}; pass --key to authenticate"
    )
    # Every reader of the receipt gets the Statement out of the envelope.
    assert RunFolder(run_dir).receipt() == statement(run_dir)
    assert RunFolder(run_dir).ladder() == ("cheap", "mid", "strong")


def _positions(size: int, name: str) -> list[int]:
    """Every byte of the receipt's tail (keyid, signature) and of its payload's last characters
    (where base64 has spare bits); elsewhere every 13th byte, the first and the last."""
    every = set(range(0, size, 13)) | {0, size - 1}
    if name == "receipt.intoto.json":
        every |= set(range(max(0, size - 200), size))
    return sorted(every)


def test_one_byte_changed_anywhere_in_a_signed_run_fails(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert {"attempts.jsonl", "outcome.json", "summary.md", "patch.diff"} <= names
    assert "receipt.intoto.json" in names and len(files) == 14  # 9 blobs
    key = load_public_key(public)
    for path in files:
        original = path.read_bytes()
        for index in _positions(len(original), path.name):
            changed = bytearray(original)
            changed[index] ^= 0x01
            path.write_bytes(bytes(changed))
            report = verify_run(run_dir, key)
            assert not report.ok, f"{path.relative_to(run_dir)} byte {index}"
        path.write_bytes(original)
    assert verify_run(run_dir, key).ok


def test_same_json_other_bytes_is_still_a_change(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    # Whitespace and key order are not in a parsed value: the canonical form catches them.
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    receipt = run_dir / "receipt.intoto.json"
    original = receipt.read_bytes()
    receipt.write_text(json.dumps(json.loads(original), indent=2) + "\n")
    report = _check(run_dir, public)
    assert report.problems == [
        "receipt.intoto.json is not in canonical form (RFC 8785): edited after sealing"
    ]
    assert "the problems above are in what it seals" in format_report(report)
    receipt.write_bytes(original)
    outcome = run_dir / "outcome.json"
    outcome.write_text(json.dumps(json.loads(outcome.read_text()), indent="\t"))
    _fails(_check(run_dir, public), "outcome.json does not match the sha256 the receipt seals")
    lines = (run_dir / "attempts.jsonl").read_bytes().splitlines(keepends=True)
    record = json.loads(lines[1])
    lines[1] = json.dumps(dict(reversed(record.items())), separators=(",", ":")).encode() + b"\n"
    (run_dir / "attempts.jsonl").write_bytes(b"".join(lines))
    assert "attempts.jsonl line 2 (seq 2): not in canonical form (RFC 8785)" in "\n".join(
        _check(run_dir, public).problems
    )


def _forge(run_dir: Path, signer_key: Path | None) -> None:
    """A full forgery: the first attempt says another model, the whole chain is recomputed, and
    the run is sealed again by the real writer — without a key, or with `signer_key`."""
    folder = RunFolder(run_dir)
    attempts = list(folder.attempts())
    attempts[0] = attempts[0].model_copy(update={"model": "provider/cheaper-model"})
    (run_dir / "attempts.jsonl").write_text("")
    for name in ("receipt.intoto.json", "outcome.json", "summary.md", "patch.diff"):
        (run_dir / name).unlink()
    signer = load_signer(signer_key) if signer_key else None
    forged = ProofLog(run_dir.name, run_dir, signer)
    for attempt in attempts:
        forged.append(attempt)
    _seal(forged, attempts)


def test_a_forged_chain_resealed_without_the_key_fails_on_the_signature(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    _forge(run_dir, None)
    assert _check(run_dir, None).ok  # consistent, and unsigned: only a key can tell
    assert "unsigned: tamper-evident, not authenticated" in format_report(_check(run_dir, None))
    report = _check(run_dir, public)
    _fails(report, "not signed: receipt.intoto.json is unsigned")
    assert report.problems == [report.problems[0]]


def test_a_forged_chain_resealed_with_another_key_fails_on_the_signature(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    other, other_pub = generate_key(tmp_path / "mallory" / "proof.key")[:2]
    _forge(run_dir, other)
    stranger = load_public_key(other_pub).keyid
    assert format_report(_check(run_dir, None)).endswith(
        f"signed by {stranger}; pass --key to authenticate"
    )
    report = _check(run_dir, public)
    _fails(report, f"wrong key: receipt.intoto.json is signed by {stranger}, not by --key")
    assert report.problems == [report.problems[0]]
    assert _check(run_dir, other_pub).ok  # it is a good signature, by someone else


def test_a_rewritten_chain_under_the_original_seal_fails(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    sealed = {n: (run_dir / n).read_bytes() for n in ("receipt.intoto.json", "outcome.json")}
    _forge(run_dir, None)
    for name, data in sealed.items():
        (run_dir / name).write_bytes(data)
    report = _check(run_dir, public)
    assert not report.ok and report.signing == "authenticated"
    assert any("chain head" in p for p in report.problems), format_report(report)


def test_an_edited_statement_keeps_no_valid_signature(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    edit_statement(run_dir, lambda data: data["predicate"].update(cost_usd=0.0001))
    report = _check(run_dir, public)
    _fails(report, "bad signature: the signature of receipt.intoto.json does not verify")
    # ... and the claim itself is re-derived from the chain and named as well
    assert report.problems[1:] == [
        "receipt.intoto.json: predicate.cost_usd is 0.0001; the attempts say 0.006"
    ]


def test_an_unsigned_run_says_so_and_fails_a_key(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    _, public = keys
    log, attempts = _write_run(tmp_path / "runs")
    _seal(log, attempts)
    report = _check(log.run_dir, None)
    assert report.ok and report.signing == "unsigned"
    assert format_report(report).splitlines()[-1] == "unsigned: tamper-evident, not authenticated"
    _fails(_check(log.run_dir, public), "not signed: receipt.intoto.json is unsigned")


def test_verify_with_a_wrong_key_exits_1_naming_it(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    _, other_pub, other_id = generate_key(tmp_path / "other" / "proof.key")
    good = runner.invoke(app, ["proof", "verify", str(run_dir), "--key", str(public)])
    assert good.exit_code == 0 and "authenticated: signed by SHA256:" in good.stdout
    bad = runner.invoke(app, ["proof", "verify", str(run_dir), "--key", str(other_pub)])
    assert bad.exit_code == 1
    assert f"not by --key {other_pub} ({other_id})" in bad.stdout
    missing = runner.invoke(app, ["proof", "verify", str(run_dir), "--key", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "no such key file" in missing.stderr


# --- the canonical encoding, old runs, aborted runs ----------------------------------------------


def test_records_are_written_in_rfc_8785_form(tmp_path: Path) -> None:
    log = ProofLog.create(tmp_path)
    log.append(_attempt(log, 1, "cheap", "rejected", feedback="é ☃ \u2028 😀", duration_s=2.0))
    raw = (log.run_dir / "attempts.jsonl").read_bytes()
    line = json.loads(raw)
    assert line["schema_version"] == 3
    assert raw == rfc8785.dumps(line) + b"\n"
    assert "é ☃ \u2028 😀".encode() in raw and b'"duration_s":2,' in raw
    body = {k: v for k, v in line.items() if k != "sha256"}
    assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == line["sha256"]
    with pytest.raises(InfraError, match="cannot be canonicalized"):
        log.append(_attempt(log, 2, "mid", "rejected", cost_usd=float("nan")))


def _old_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _as_schema_2(run_dir: Path) -> None:
    """Rewrite a sealed run the way cascade wrote runs before RFC 8785 and signed receipts:
    schema 2 records hashed over Python's sorted, compact JSON; a plain Statement, indented."""
    head, lines, listed = "0" * 64, [], []
    for raw in (run_dir / "attempts.jsonl").read_bytes().splitlines():
        record = {k: v for k, v in json.loads(raw).items() if k != "sha256"}
        record.update(schema_version=2, prev=head, feedback=record["feedback"] + " — é")
        head = hashlib.sha256(_old_json(record)).hexdigest()
        lines.append(_old_json({**record, "sha256": head}) + b"\n")
        keys = ("seq", "rung", "model", "status")
        listed.append({**{k: record[k] for k in keys}, "sha256": head})
    (run_dir / "attempts.jsonl").write_bytes(b"".join(lines))
    old = statement(run_dir)
    del old["predicate"]["sealed_files"]
    old["predicate"].update(chain_head=head, attempts=listed)
    text = json.dumps(old, indent=2, ensure_ascii=False) + "\n"
    (run_dir / "receipt.intoto.json").write_text(text, encoding="utf-8")


def test_a_run_sealed_the_old_way_still_verifies(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    _, public = keys
    log, attempts = _write_run(tmp_path / "runs")
    _seal(log, attempts)
    _as_schema_2(log.run_dir)
    report = _check(log.run_dir, None)
    assert report.ok, format_report(report)
    assert report.signing == "legacy"
    assert format_report(report).splitlines()[-1] == (
        "unsigned: tamper-evident, not authenticated (sealed before receipts were signed)"
    )
    assert RunFolder(log.run_dir).ladder() == ("cheap", "mid", "strong")
    _fails(_check(log.run_dir, public), "not signed: receipt.intoto.json is a plain in-toto")
    lines = (log.run_dir / "attempts.jsonl").read_bytes().replace(b'"mid"', b'"mie"', 1)
    (log.run_dir / "attempts.jsonl").write_bytes(lines)
    problems = _check(log.run_dir, None).problems
    assert "attempts.jsonl line 2 (seq 2): content does not match its sha256" in problems


def test_an_aborted_run_says_so_first(tmp_path: Path) -> None:
    log, _ = _write_run(tmp_path / "runs")
    (log.run_dir / "ABORTED").write_text("2026-01-01T00:00:00Z the replay stopped\n")
    with (log.run_dir / "attempts.jsonl").open("ab") as handle:
        handle.write(b'{"seq":4,"ru')
    report = verify_run(log.run_dir)
    assert not report.ok
    text = format_report(report).splitlines()
    assert text[0] == (
        "aborted: chain intact up to seq 3, never sealed "
        "(marked ABORTED: 2026-01-01T00:00:00Z the replay stopped)"
    )
    assert text[1].startswith("FAILED")
    assert "run was not sealed: receipt.intoto.json is missing" in report.problems
    result = runner.invoke(app, ["proof", "verify", str(log.run_dir)])
    assert result.exit_code == 1 and result.stdout.startswith("aborted: chain intact up to seq 3")
    # A record broken in the middle: the chain holds only up to the one before it.
    lines = (log.run_dir / "attempts.jsonl").read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"mid"', b'"mie"')
    (log.run_dir / "attempts.jsonl").write_bytes(b"\n".join(lines))
    assert format_report(verify_run(log.run_dir)).startswith("aborted: chain intact up to seq 1,")


# --- the documented recipes, and the whole command line ------------------------------------------


def _recipe(fence: str, index: int = 0) -> str:
    text = (ROOT / "docs" / "verifying-proof.md").read_text()
    blocks = text.split(f"```{fence}\n")[1:]
    return blocks[index].split("```\n")[0]


def test_the_documented_python_recipe_checks_a_signed_run(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    script = tmp_path / "check_run.py"
    script.write_text(_recipe("python"))
    command = [sys.executable, str(script), str(run_dir), str(public)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("OK "), done.stderr
    (run_dir / "summary.md").write_text("all good\n")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "summary.md changed" in done.stderr


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("jq")), reason="no openssl/jq")
def test_the_documented_openssl_recipe_checks_a_signed_run(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    run_dir = _signed_run(tmp_path, private)
    recipe = _recipe("sh", 2)
    env = {**os.environ, "PUB": str(public)}
    command = ["bash", "-euo", "pipefail", "-c", recipe]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=run_dir, env=env, capture_output=True, text=True, check=False
        )

    done = run()
    assert done.returncode == 0 and "Signature Verified Successfully" in done.stdout, done.stderr
    edit_statement(run_dir, lambda data: data["predicate"].update(cost_usd=0.0001))
    assert run().returncode != 0


def test_fix_signs_with_the_configured_key_and_verify_checks_it(
    demo: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    with (demo / "cascade.toml").open("a") as handle:  # relative to the config file's folder
        handle.write(f'\n[proof]\nkey = "{os.path.relpath(private, demo)}"\n')
    fixed = runner.invoke(app, ["fix", "DEMO-1", "--repo", str(demo), "--sandbox", "local"])
    assert fixed.exit_code == 0, fixed.stderr
    (run_dir,) = [p for p in (demo / ".cascade" / "runs").iterdir() if p.is_dir()]
    verify = ["proof", "verify", str(run_dir), "--key", str(public)]
    good = runner.invoke(app, verify)
    assert good.exit_code == 0, good.stdout
    assert "authenticated: signed by SHA256:" in good.stdout
    patch = run_dir / "patch.diff"
    data = bytearray(patch.read_bytes())
    data[len(data) // 2] ^= 0x01
    patch.write_bytes(bytes(data))
    bad = runner.invoke(app, verify)
    assert bad.exit_code == 1 and "patch.diff does not match" in bad.stdout


def test_a_key_that_cannot_sign_stops_fix_before_any_work(
    demo: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, public = keys
    for key, said in ((demo / "nope.key", "no such key file"), (public, "is a public key")):
        monkeypatch.setenv("CASCADE_PROOF__KEY", str(key))
        result = runner.invoke(app, ["fix", "DEMO-1", "--repo", str(demo), "--sandbox", "local"])
        assert result.exit_code == 2, result.output
        assert "[proof] key (from env CASCADE_PROOF__KEY)" in result.stderr
        assert said in result.stderr
        assert not (demo / ".cascade" / "runs").exists()
