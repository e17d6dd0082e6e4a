"""One way to turn a pydantic ValidationError into a line a user can act on: each problem's
location (dotted) and message, `;`-joined. Callers choose how a location and an unknown key read."""

from __future__ import annotations

from pydantic import ValidationError


def describe(
    exc: ValidationError,
    *,
    label: str = "`{}`",
    unknown: str | None = "unknown key",
    top: str = "(top level)",
) -> str:
    """`label` formats a dotted location (`top` stands for an empty one); `unknown` replaces
    pydantic's message for a key the model does not have (None keeps pydantic's)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = unknown if unknown and err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{label.format(loc) if loc else top}: {msg}")
    return "; ".join(parts)
