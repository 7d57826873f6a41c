"""Child processes that must not outlive the process that started them."""

import ctypes
import signal


def die_with_parent() -> None:
    """Runs in the child between fork and exec: when the parent dies, even by SIGKILL, the
    kernel sends the child SIGTERM, so no broker or worker is left behind. PR_SET_PDEATHSIG = 1."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
