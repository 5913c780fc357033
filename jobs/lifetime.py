"""Process lifetimes: children that cannot outlive the process that started them."""

from __future__ import annotations

import ctypes
import logging
import signal

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Have the kernel send `sig` to this process when its parent dies (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        logger.debug("prctl unavailable: this process may outlive its parent")
