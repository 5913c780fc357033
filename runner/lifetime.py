"""Process lifetimes: children that cannot outlive the process that started them, and stop signals that
reach the thread that handles them."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import threading
from collections.abc import Iterable, Iterator

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Have the kernel send `sig` to this process when its parent dies (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        logger.debug("prctl unavailable: this process may outlive its parent")


@contextlib.contextmanager
def signals_held(signals: Iterable[int] = STOP_SIGNALS) -> Iterator[None]:
    """Hold `signals` in the calling thread meanwhile; a signal sent meanwhile is delivered on leaving.

    Threads started inside inherit the mask and so never take one of them. That matters: CPython runs a
    handler in the main thread only and does not wake it, so a signal that the kernel gives to a helper
    thread (it does when two arrive together) waits until the main thread's blocking call returns, which
    for an idle RQ worker's dequeue is minutes."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_helper(thread: threading.Thread, signals: Iterable[int] = STOP_SIGNALS) -> None:
    """Start a helper thread that never takes `signals`: they stay with the main thread, whose handlers run."""
    with signals_held(signals):
        thread.start()
