"""Keep a thread's alternate signal stack across a native library call that replaces it.

OpenVINO's CPU plugin installs its own alternate signal stack (``sigaltstack``) on the thread
that compiles a model, and when the compiled model is destroyed it puts back the stack that was
current at its creation. Two compiled models destroyed in the order they were made leave the
thread pointing at the first one's stack, which is unmapped by then; the next signal whose
handler runs on the alternate stack (every handler Python installs, e.g. the SIGCHLD handler of
PyTorch's DataLoader, raised when any child process exits) kills the process with SIGSEGV.
Putting the thread's own stack back after each compile makes every later restore a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from contextlib import contextmanager


class _Stack(ctypes.Structure):  # POSIX stack_t
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _sigaltstack():
    """libc's ``sigaltstack``, or None where there is none (Windows)."""
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or None).sigaltstack
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.POINTER(_Stack), ctypes.POINTER(_Stack)]
    function.restype = ctypes.c_int
    return function


_SIGALTSTACK = _sigaltstack()


def current_signal_stack() -> tuple[int, int, int] | None:
    """This thread's alternate signal stack as ``(address, size, flags)``; None if unknown."""
    if _SIGALTSTACK is None:
        return None
    now = _Stack()
    if _SIGALTSTACK(None, ctypes.byref(now)) != 0:
        return None
    return now.ss_sp or 0, now.ss_size, now.ss_flags


def set_signal_stack(address: int, size: int, flags: int = 0) -> None:
    """Install ``size`` bytes at ``address`` as this thread's alternate signal stack; ``flags``
    as ``current_signal_stack`` gives them (of which only SS_DISABLE = 2, switching it off, is
    a setting: SS_ONSTACK is state). For ``kept_signal_stack`` and its tests."""
    if _SIGALTSTACK is not None:
        _SIGALTSTACK(ctypes.byref(_Stack(address or None, flags & 2, size)), None)


@contextmanager
def kept_signal_stack():
    """Run the body, then give the thread back the alternate signal stack it had before."""
    before = current_signal_stack()
    try:
        yield
    finally:
        if before is not None and current_signal_stack() != before:
            set_signal_stack(*before)
