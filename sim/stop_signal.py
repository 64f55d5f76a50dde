"""How a training loop (policy or pose estimator) is stopped without losing work.

The first SIGINT (Ctrl-C) or SIGTERM (kill, a job scheduler; background jobs started from a script ignore SIGINT)
only sets `requested`: the loop finishes its step, writes a checkpoint and returns. A second SIGINT raises
KeyboardInterrupt at once, for a step that never ends.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignal:
    """A context that turns SIGINT and SIGTERM into a stop request; outside the main thread it installs nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _request(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopSignal:
        # Python delivers signals to the main thread only, and only it may install handlers
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._request) for signum in SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous = {}
