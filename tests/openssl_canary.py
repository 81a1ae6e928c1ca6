"""CPython #148594, shown: an error left on the thread's OpenSSL queue (the
EPIPE a closed peer leaves), then a read with nothing to read on a TLS
connection that finished its handshake, through the lab's wrapped method and
through CPython's own. Over memory buffers (ssl.SSLObject, as the CPython
issue's probe does): a socket's read path can empty the queue itself, which
hides the bug. Prints {"wrapped": ..., "unwrapped": ...}: the exception each
read raised ("SSLWantReadError" is right: no data yet). Run by
tests/test_tls.py here and by tests/test_images.py in each image's python."""

import ctypes
import json
import ssl
import sys
import tempfile
from pathlib import Path

from distributed.security import Security

import lab  # noqa: F401  (installs lab.openssl_queue, as the images' .pth does)


def tls_pair() -> tuple[ssl.SSLObject, ssl.SSLObject, callable]:
    """Server and client ends over memory buffers, handshake and session
    tickets done, nothing pending; and the pump that carries bytes between them."""
    credentials = Security.temporary()
    folder = Path(tempfile.mkdtemp())
    (folder / "cert.pem").write_text(credentials.tls_scheduler_cert)
    (folder / "key.pem").write_text(credentials.tls_scheduler_key)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    to_server, from_server, to_client, from_client = (ssl.MemoryBIO() for _ in range(4))
    server = server_context.wrap_bio(to_server, from_server, server_side=True)
    client = client_context.wrap_bio(to_client, from_client)

    def pump() -> None:
        to_client.write(from_server.read())
        to_server.write(from_client.read())

    for step in (lambda end: end.do_handshake(), lambda end: end.read(1)):  # then TLS 1.3's tickets
        for _ in range(10):
            for end in (client, server):
                try:
                    step(end)
                except ssl.SSLWantReadError:
                    pass
                pump()
    return server, client, pump


def stale_epipe() -> None:
    libssl = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
    libssl.ERR_set_error.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
    libssl.ERR_new()
    libssl.ERR_set_error(2, 32, None)  # ERR_LIB_SYS, EPIPE


def outcome(read) -> str:
    server, client, _ = tls_pair()
    stale_epipe()
    try:
        read(client, 10)
        return "data"
    except Exception as err:  # the class is the answer
        return type(err).__name__


if __name__ == "__main__":
    read = ssl.SSLObject.read
    print(json.dumps({"wrapped": outcome(read), "unwrapped": outcome(getattr(read, "__wrapped__", read)),
                      "python": sys.version.split()[0], "openssl": ssl.OPENSSL_VERSION}))
