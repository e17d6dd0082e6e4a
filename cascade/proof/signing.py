"""Signed receipts. A receipt is a DSSE envelope (payloadType application/vnd.in-toto+json) over
the RFC 8785 bytes of the run's in-toto Statement, signed with an Ed25519 key the user holds, or
with no signature at all. Keys are read and used on the host, never inside a sandbox;
`cryptography` is imported only when a key is made, loaded or checked."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cascade.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

log = logging.getLogger(__name__)

PAYLOAD_TYPE = "application/vnd.in-toto+json"  # what the in-toto envelope layer requires
KEYGEN_HINT = "make one with `cascade proof keygen`"
ENVELOPE_FIELDS = ("payload", "payloadType", "signatures")
SIGNATURE_FIELDS = ("keyid", "sig")


class Signer(Protocol):
    """Seals a receipt. `keyid` is the hint a verifier matches a signature to its key by."""

    @property
    def keyid(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding: what a signature covers, the payload type bound in
    (`DSSEv1 <len type> <type> <len payload> <payload>`, lengths in bytes, decimal)."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def envelope(payload: bytes, signer: Signer | None) -> dict[str, Any]:
    """The DSSE envelope of `payload`; `signatures` is empty when there is no signer."""
    signatures = []
    if signer is not None:
        sig = signer.sign(pae(PAYLOAD_TYPE, payload))
        signatures.append({"keyid": signer.keyid, "sig": _b64(sig)})
    return {"payloadType": PAYLOAD_TYPE, "payload": _b64(payload), "signatures": signatures}


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Receipt:
    """A receipt as read: its Statement and, for an envelope, the exact bytes that were signed.
    A plain Statement (no envelope) is what runs sealed before signed receipts have."""

    statement: dict[str, Any]
    enveloped: bool
    payload_type: str = ""
    payload: bytes = b""
    signatures: tuple[Signature, ...] = ()

    @property
    def signed_by(self) -> tuple[str, ...]:
        return tuple(s.keyid or "(no keyid)" for s in self.signatures)


def read_receipt(raw: bytes) -> Receipt:
    """Parse a receipt file's bytes; a ValueError says why they are not a receipt. Base64 must be
    canonical (standard alphabet, padded, no stray bits), so no edit leaves the decoded bytes
    unchanged."""
    value = json.loads(raw.decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    if "payloadType" not in value:
        if "_type" not in value:
            raise ValueError("neither a DSSE envelope nor an in-toto Statement")
        return Receipt(statement=value, enveloped=False)
    _only(value, ENVELOPE_FIELDS, "the envelope")
    kind, signatures = value.get("payloadType"), value.get("signatures")
    if not isinstance(kind, str) or not isinstance(signatures, list):
        raise ValueError("a DSSE envelope needs a payloadType string and a signatures list")
    payload = _unb64(value.get("payload"), "payload")
    statement = json.loads(payload.decode("utf-8"))
    if not isinstance(statement, dict):
        raise ValueError("the envelope's payload is not a JSON object")
    read: list[Signature] = []
    for entry in signatures:
        if not isinstance(entry, dict) or not isinstance(entry.get("keyid", ""), str):
            raise ValueError("a signature is not an object with a string keyid")
        _only(entry, SIGNATURE_FIELDS, "a signature")
        read.append(Signature(entry.get("keyid", ""), _unb64(entry.get("sig"), "sig")))
    return Receipt(statement, True, kind, payload, tuple(read))


def _only(value: dict[str, Any], fields: tuple[str, ...], what: str) -> None:
    # An unknown field is refused: a renamed `keyid` would otherwise read as no keyid at all.
    extra = sorted(set(value) - set(fields))
    if extra:
        raise ValueError(f"{what} has unknown field(s) {', '.join(extra)}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, field: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"the envelope's {field} is not a string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the envelope's {field} is not base64 ({exc})") from exc
    if _b64(data) != text:
        raise ValueError(f"the envelope's {field} is not canonical base64")
    return data


# --- keys ---------------------------------------------------------------------------------------


def keyid_of(public: Ed25519PublicKey) -> str:
    """The key's OpenSSH SHA256 fingerprint (`ssh-keygen -lf` prints it): the keyid Go's DSSE
    verifiers (cosign's among them) compute and match a signature's keyid against."""
    from cryptography.hazmat.primitives import serialization

    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    wire = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")


class Ed25519Signer:
    """A private key read from the user's file; it stays in this (host) process."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._keyid = keyid_of(key.public_key())

    @property
    def keyid(self) -> str:
        return self._keyid

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


@dataclass(frozen=True)
class PublicKey:
    key: Ed25519PublicKey
    keyid: str
    path: Path

    def verifies(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def load_signer(path: Path) -> Ed25519Signer:
    """The Ed25519 private key (PEM, unencrypted) at `path`; a UsageError says what is wrong."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read_key(path)
    if b"PRIVATE KEY-----" not in data:
        public = b"PUBLIC KEY-----" in data or data.startswith(b"ssh-")
        what = "a public key" if public else "not a PEM private key"
        raise UsageError(f"{path} is {what}; signing needs the Ed25519 private key ({KEYGEN_HINT})")
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted
        raise UsageError(f"{path} is encrypted; cascade reads an unencrypted key") from exc
    except ValueError as exc:
        raise UsageError(f"{path} is not a readable PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} holds a {_kind(key)} key; receipts are signed with Ed25519")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("%s can be read by other users; `chmod 600` it", path)
    return Ed25519Signer(key)


def load_public_key(path: Path) -> PublicKey:
    """An Ed25519 public key: PEM (`cascade proof keygen`'s .pub, cosign's format) or an OpenSSH
    `ssh-ed25519` line."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import (
        load_pem_public_key,
        load_ssh_public_key,
    )

    data = _read_key(path)
    if b"PRIVATE KEY-----" in data:
        raise UsageError(f"{path} is a private key; --key takes the public key ({path}.pub)")
    try:
        key = load_ssh_public_key(data) if data.startswith(b"ssh-") else load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not a PEM or OpenSSH public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} holds a {_kind(key)} key; receipts are signed with Ed25519")
    return PublicKey(key, keyid_of(key), path)


def generate_key(out: Path) -> tuple[Path, Path, str]:
    """Write a new Ed25519 private key to `out` (PEM, PKCS#8, mode 0600) and its public key to
    `out.pub` (PEM); refuse to overwrite either. Returns both paths and the keyid."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pub = out.with_name(out.name + ".pub")
    for path in (out, pub):
        if path.exists() or path.is_symlink():
            raise UsageError(f"{path} already exists; not overwriting a key (pick another --out)")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _create(out, private, 0o600)
        _create(pub, public, 0o644)
    except FileExistsError as exc:
        raise UsageError(f"{exc.filename} already exists; not overwriting a key") from exc
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or out}: {exc.strerror}") from exc
    return out, pub, keyid_of(key.public_key())


def _create(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: never follows or replaces what is there; the mode is set as the file is created.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such key file ({KEYGEN_HINT})") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read: {exc.strerror}") from exc


def _kind(key: object) -> str:
    return type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "")
