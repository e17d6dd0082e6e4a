"""The seal of a run as bytes: the receipt's DSSE envelope (its canonical form, its payload type
and, given a public key, its signature) and the files whose digests it seals (outcome.json and
summary.md; patch.diff is its subject). What the Statement claims is checked in `verify`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cascade.proof.log import SEALED_FILES, canonical_json
from cascade.proof.run_folder import OUTCOME_FILE, RECEIPT_FILE
from cascade.proof.signing import PAYLOAD_TYPE, PublicKey, Receipt, pae, read_receipt

# legacy: a plain Statement (sealed before receipts were signed); unsigned: an envelope with no
# signature; signed: signatures not checked (no key given); authenticated: one verifies under it.
Signing = Literal["legacy", "unsigned", "signed", "authenticated"]


@dataclass(frozen=True)
class Seal:
    statement: dict[str, Any]
    enveloped: bool
    signing: Signing
    signed_by: tuple[str, ...]
    signature_problem: str = ""  # with a key: why the receipt is not authenticated by it


def read_seal(run_dir: Path, key: PublicKey | None, problems: list[str]) -> Seal | None:
    """The receipt, its bytes checked; None (and a problem) when it is not a readable receipt."""
    try:
        raw = (run_dir / RECEIPT_FILE).read_bytes()
        receipt = read_receipt(raw)
    except (OSError, ValueError) as exc:
        problems.append(f"{RECEIPT_FILE} is not a readable cascade receipt ({exc})")
        return None
    signing: Signing = "legacy"
    if receipt.enveloped:
        _check_envelope(raw, receipt, problems)
        signing = "signed" if receipt.signatures else "unsigned"
    problem = _signature_problem(receipt, key) if key is not None else ""
    if key is not None and not problem:
        signing = "authenticated"
    return Seal(receipt.statement, receipt.enveloped, signing, receipt.signed_by, problem)


def _check_envelope(raw: bytes, receipt: Receipt, problems: list[str]) -> None:
    if receipt.payload_type != PAYLOAD_TYPE:
        kind = receipt.payload_type
        problems.append(f"{RECEIPT_FILE}: payloadType is {kind!r}, not {PAYLOAD_TYPE}")
    try:
        envelope_ok = raw == canonical_json(json.loads(raw)) + b"\n"
        payload_ok = receipt.payload == canonical_json(receipt.statement)
    except ValueError:
        envelope_ok = payload_ok = False
    # The writer emits both in RFC 8785 form, so any other bytes (whitespace included) are an
    # edit even where the parsed JSON is the same.
    if not envelope_ok:
        problems.append(f"{RECEIPT_FILE} is not in canonical form (RFC 8785): edited after sealing")
    if not payload_ok:
        problems.append(
            f"{RECEIPT_FILE}: its payload is not the canonical (RFC 8785) Statement: edited after "
            "sealing"
        )


def _signature_problem(receipt: Receipt, key: PublicKey) -> str:
    given = f"--key {key.path} ({key.keyid})"
    if not receipt.enveloped:
        return (
            f"not signed: {RECEIPT_FILE} is a plain in-toto Statement (sealed before receipts "
            f"were signed); {given} needs a signature"
        )
    if not receipt.signatures:
        return (
            f"not signed: {RECEIPT_FILE} is unsigned (tamper-evident, not authenticated); "
            f"{given} needs a signature"
        )
    data = pae(receipt.payload_type, receipt.payload)
    mine = [s for s in receipt.signatures if s.keyid in ("", key.keyid)]
    if any(key.verifies(s.sig, data) for s in mine):
        return ""
    if mine:
        return (
            f"bad signature: the signature of {RECEIPT_FILE} does not verify under {given}: "
            "the receipt was changed after it was signed"
        )
    return f"wrong key: {RECEIPT_FILE} is signed by {', '.join(receipt.signed_by)}, not by {given}"


def check_sealed_files(
    run_dir: Path, predicate: dict[str, Any], enveloped: bool, problems: list[str]
) -> None:
    """Every file the receipt seals by digest is there with those bytes. A receipt from before
    signed receipts seals none (outcome.json is then compared with it field by field only)."""
    listed = predicate.get("sealed_files")
    if listed is None and not enveloped:
        return
    digests: dict[Any, Any] = {}
    if isinstance(listed, list):
        digests = {e.get("name"): e.get("digest") for e in listed if isinstance(e, dict)}
    for name in SEALED_FILES:
        path = run_dir / name
        digest = digests.get(name)
        if not isinstance(digest, dict) or not isinstance(digest.get("sha256"), str):
            problems.append(f"{RECEIPT_FILE}: predicate.sealed_files has no sha256 for {name}")
        elif not path.is_file():
            if name != OUTCOME_FILE:  # a missing outcome.json is named by the outcome check
                problems.append(f"{name} is missing; the receipt seals it")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest["sha256"]:
            problems.append(f"{name} does not match the sha256 the receipt seals for it")
