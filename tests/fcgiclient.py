"""A minimal FastCGI client for the tests (FastCGI specification 1.0).

It speaks the responder role record by record, so a test can send a
request whole, in pieces, or not at all, keep a connection open
(FCGI_KEEP_CONN) and read the answer.  Standard library only.
"""
import socket
import time
import struct

VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1
KEEP_CONN = 1


def connect(address, timeout=20.0):
    """address: a unix socket path, or (host, port)."""
    if isinstance(address, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET,
                          socket.SOCK_STREAM)
    s.settimeout(timeout)
    # A full unix-socket backlog answers a non-blocking connect with
    # EAGAIN instead of waiting: retry until the server accepts.
    deadline = time.monotonic() + timeout
    while True:
        try:
            s.connect(address)
            return s
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def record(rtype, content=b"", request_id=1):
    out = b""
    # Records carry at most 65535 bytes; split longer content.
    chunks = [content[i:i + 65535] for i in range(0, len(content), 65535)] or [b""]
    for chunk in chunks:
        out += struct.pack(">BBHHBx", VERSION, rtype, request_id, len(chunk), 0) + chunk
    return out


def _length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def params_bytes(params):
    body = b""
    for k, v in params.items():
        k, v = k.encode(), v.encode()
        body += _length(len(k)) + _length(len(v)) + k + v
    return body


def request_bytes(params, body=b"", keep=False):
    """The records of one whole request."""
    out = record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, KEEP_CONN if keep else 0))
    out += record(PARAMS, params_bytes(params)) + record(PARAMS)
    if body:
        out += record(STDIN, body)
    return out + record(STDIN)


def read_answer(s):
    """Reads records until END_REQUEST; returns (status, headers, body).

    Raises EOFError when the connection ends first."""
    buf = b""
    stdout = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("connection closed before the answer ended")
            buf += chunk

    while True:
        need(8)
        _, rtype, _, clen, plen = struct.unpack(">BBHHBx", buf[:8])
        need(8 + clen + plen)
        content = buf[8:8 + clen]
        buf = buf[8 + clen + plen:]
        if rtype == STDOUT:
            stdout += content
        elif rtype == END_REQUEST:
            break
    head, _, body = stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, body.decode()


def is_open(s):
    """True when the peer has not closed s (nothing is read from it)."""
    s.setblocking(False)
    try:
        data = s.recv(1, socket.MSG_PEEK)
        return len(data) > 0
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)
