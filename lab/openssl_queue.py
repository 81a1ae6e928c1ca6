"""Clear OpenSSL's error queue before each TLS read or write (CPython #148594).

OpenSSL keeps one error queue per thread, and SSL_get_error() looks at it
before anything else: "the current thread's error queue must be empty before
the TLS/SSL I/O operation is attempted". CPython's ssl module does not empty
it (https://github.com/python/cpython/issues/148594, open for 3.13-3.15).
With OpenSSL 3.5 (Debian 13) a peer that closes one connection leaves an
EPIPE entry on the event loop's thread, and the next read on any other
connection of that thread raises BrokenPipeError: one worker's nanny closing
its registration comm broke the client's connection to the scheduler in about
half of all TLS runs. Dask's comms all run on one event-loop thread, so every
process that talks TLS needs this: the lab imports it, and the image's
lab-image.pth imports it into every Python process (workers started by
dask-jobqueue, the lesson's own scripts).

Remove when the Python in the image has the fix.
"""

from __future__ import annotations

import ctypes
import functools
import ssl
from collections.abc import Callable


def _err_clear_error() -> Callable[[], None] | None:
    """ERR_clear_error of the libcrypto the ssl module uses (through _ssl's handle)."""
    try:
        function = ctypes.CDLL(ssl._ssl.__file__).ERR_clear_error  # type: ignore[attr-defined]
    except (AttributeError, OSError):  # a Python whose _ssl is built in, or no such symbol
        return None
    function.restype = None
    function.argtypes = []
    return function


_clear = _err_clear_error()

# Every method that calls SSL_read, SSL_write, SSL_do_handshake or SSL_shutdown:
# SSLSocket's (tornado's streams, so dask's comms) and SSLObject's (asyncio's
# TLS over memory buffers), which share the C code that lacks the clear.
METHODS = {ssl.SSLSocket: ("recv", "recv_into", "read", "send", "sendall", "write", "do_handshake", "unwrap"),
           ssl.SSLObject: ("read", "write", "do_handshake", "unwrap")}


def _clearing(method, clear: Callable[[], None]):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        clear()
        return method(*args, **kwargs)

    wrapper._clears_openssl_queue = True  # type: ignore[attr-defined]
    return wrapper


def install() -> bool:
    """Wrap the I/O methods once; True when they clear the queue."""
    if _clear is None:
        return False
    for cls, names in METHODS.items():
        for name in names:
            method = getattr(cls, name)
            if not getattr(method, "_clears_openssl_queue", False):
                setattr(cls, name, _clearing(method, _clear))
    return True


def installed() -> bool:
    return all(getattr(getattr(cls, name), "_clears_openssl_queue", False)
               for cls, names in METHODS.items() for name in names)


# Why the fix is off, said once per process where TLS is about to be used.
PROBLEM = ("this Python's ssl module has no ERR_clear_error to call (a statically linked OpenSSL, as in "
           "standalone Pythons), so the fix for CPython #148594 is off: a TLS run may lose its scheduler "
           "connection with BrokenPipeError; use the lab image's Python, or set lab.tls: false")
_warned = False


def warn_if_off() -> bool:
    """Before TLS is used: say once, on stderr, when the fix is not active. True when it is."""
    global _warned
    if installed():
        return True
    if not _warned:
        _warned = True
        import sys

        print(f"lab: warning: {PROBLEM}", file=sys.stderr, flush=True)
    return False


install()
