"""litellm takes seconds to import (its provider types are pydantic models built at import time),
and a run needs it before its first prompt (the token count) and its first model call. A run
starts that import in a thread of its own as it begins, so it overlaps opening the sandbox and
taking the baseline instead of holding up the first prompt; `ready` waits for it without
blocking the event loop."""

from __future__ import annotations

import logging
import threading

import anyio

from cascade.core.prices import load_litellm

log = logging.getLogger(__name__)

_lock = threading.Lock()
_threads: list[threading.Thread] = []  # the one import, once started


def start() -> None:
    """Begin importing litellm in a daemon thread (once per process)."""
    with _lock:
        if not _threads:
            _threads.append(threading.Thread(target=_load, name="cascade-preload", daemon=True))
            _threads[0].start()


async def ready() -> None:
    """Return once litellm is imported (an import that failed fails again where it is used)."""
    start()
    if _threads[0].is_alive():
        await anyio.to_thread.run_sync(_threads[0].join, abandon_on_cancel=True)


def _load() -> None:
    try:
        load_litellm()
    except Exception as exc:  # said where litellm is needed, by that import
        log.debug("preloading litellm failed: %s", exc)
