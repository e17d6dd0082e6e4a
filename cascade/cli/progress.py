"""Shows a run's progress: a spinner and one line per attempt on a terminal, plain timestamped
lines otherwise (CI logs). Reads engine events; never writes proof."""

from __future__ import annotations

import time
from typing import TextIO

from rich.console import Console
from rich.status import Status
from rich.text import Text

from cascade.core.events import Event
from cascade.proof.summary import headline

MARK = {
    "verified": "✓", "accepted": "✓", "unproven": "~",
    "rejected": "✗", "edit_error": "✗", "empty_patch": "✗",
}  # fmt: skip


class Progress:
    def __init__(self, stream: TextIO, *, label: str = "") -> None:
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal
        self.label = label
        self.started = time.monotonic()
        self._status: Status | None = None

    def __call__(self, event: Event) -> None:
        if event.kind == "attempt_done" and event.attempt is not None:
            a = event.attempt
            detail = _detail(event)
            self._line(
                f"{MARK.get(a.status, '!')} #{a.seq} {a.rung}"
                + (" (reproduce)" if a.role == "reproduce" else "")
                + f" attempt {a.attempt}: {a.status}"
                f"  ${a.cost_usd:.4f}  {a.duration_s:.1f}s" + (f"  — {detail}" if detail else "")
            )
        elif event.kind == "workflow":  # the task's path: it stays on screen
            self._line(event.message)
        elif event.kind == "done":
            self._stop()
        else:
            self._spin(event.message)

    def note(self, message: str) -> None:
        self._line(message)

    def close(self) -> None:
        self._stop()

    def _spin(self, message: str) -> None:
        text = f"{self.label}{message}"
        if not self.live:
            self._line(message)
        elif self._status is None:
            self._status = self.console.status(Text(text))  # a command's `[/]` is not markup
            self._status.start()
        else:
            self._status.update(Text(text))

    def _line(self, message: str) -> None:
        stamp = f"[{time.monotonic() - self.started:6.1f}s] " if not self.live else ""
        self.console.print(f"{stamp}{self.label}{message}", markup=False)

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def _detail(event: Event) -> str:
    a = event.attempt
    return "" if a is None or a.status in ("verified", "accepted") else headline(a, 160)
