#!/usr/bin/env python3
"""A recording HTTP(S) endpoint for the outbound action tests.

    http_receiver.py serve --port-file FILE --log FILE [options]
    http_receiver.py query LOG INDEX FIELD [ARG]
    http_receiver.py count LOG

serve: listens on 127.0.0.1, port 0 (the kernel's choice), writes the port
to --port-file once it accepts connections, and appends one JSON line per
request to --log, written and flushed *before* the answer is sent (a
request whose answer hangs is already recorded):
    {"n": 1, "time": 1700000000.123, "method": "POST", "path": "/x?y",
     "headers": [["Host", "127.0.0.1:4242"], ...],
     "body_b64": "...", "body": "... (UTF-8, invalid bytes as U+FFFD)",
     "answer": 200}
The answer is decided, first match wins, by:
  - the control file (--control FILE), re-read on every request when it
    exists: a JSON object with the same members as the options below
    ("fail_first", "fail_status", "status", "hang", "location", "body");
  - segments of the request's path, so that one receiver serves several
    actions at once: /status/CODE answers CODE; /hang/SECONDS sleeps that
    long before answering; /fail/N answers 500 to the first N requests
    that reached this exact path; /redirect answers 302 with a Location
    (--location, else /redirected on this receiver); /big/BYTES answers
    a body of BYTES bytes;
  - the options: --fail-first N (answer --fail-status, default 500, to the
    first N requests), --status CODE (default 200), --hang SECONDS,
    --location URL.
The answer body is "receiver: CODE for request N\n" unless --body or /big
says otherwise.  With --forward URL it is a relay instead: each request
is sent on to URL (its path appended, method, headers and body kept) and
the upstream answer relayed; with --drop-first N the first N upstream
answers are dropped (the connection is closed without an answer: a lost
answer, after the upstream has acted).  With --tls-cert and --tls-key it serves HTTPS (the TLS
handshake happens in the request's thread, so a client that rejects the
certificate blocks nobody; such failures go to stderr, not to the log).
SIGTERM stops it at once.  Python's standard library only.

query: prints FIELD of request INDEX (1-based; -1 the last) of LOG:
method, path, body (exact bytes), answer, time, header NAME (the values
of header NAME, case-insensitive, one per line; nothing when absent),
headers (every "Name: value" line), json PATH (the value at PATH in the
body parsed as JSON, dotted names and [i] indexes, printed as compact
JSON; strings unquoted with "text"), valid-json (exit 0 when the body is
exactly one JSON text by Python's strict parser, else 1).
count: prints the number of requests in LOG (0 when LOG does not exist).
"""

import base64
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Options:
    def __init__(self):
        self.port_file = None
        self.log = None
        self.control = None
        self.fail_first = 0
        self.fail_status = 500
        self.status = 200
        self.hang = 0.0
        self.location = None
        self.body = None
        self.tls_cert = None
        self.tls_key = None
        self.forward = None
        self.drop_first = 0


OPTS = Options()
LOCK = threading.Lock()
COUNT = 0  # requests recorded so far
PATH_COUNTS = {}  # path -> requests that reached it


def control():
    """The control file's settings over the options' (a dict)."""
    settings = {
        "fail_first": OPTS.fail_first,
        "fail_status": OPTS.fail_status,
        "status": OPTS.status,
        "hang": OPTS.hang,
        "location": OPTS.location,
        "body": OPTS.body,
    }
    if OPTS.control and os.path.exists(OPTS.control):
        try:
            with open(OPTS.control, encoding="utf-8") as f:
                settings.update(json.load(f))
        except (OSError, ValueError) as e:
            sys.stderr.write("http_receiver: control file: %s\n" % e)
    return settings


def read_chunked(rfile):
    out = b""
    while True:
        line = rfile.readline()
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return out
        out += rfile.read(size)
        rfile.readline()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http_receiver"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def handle_one(self):
        global COUNT
        length = self.headers.get("Content-Length")
        if length is not None:
            body = self.rfile.read(int(length))
        elif "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = read_chunked(self.rfile)
        else:
            body = b""
        settings = control()
        segments = [s for s in self.path.split("?")[0].split("/") if s]
        status = int(settings["status"])
        hang = float(settings["hang"] or 0)
        location = settings["location"]
        answer_body = settings["body"]
        with LOCK:
            COUNT += 1
            n = COUNT
            PATH_COUNTS[self.path] = PATH_COUNTS.get(self.path, 0) + 1
            path_n = PATH_COUNTS[self.path]
        if n <= int(settings["fail_first"]):
            status = int(settings["fail_status"])
        redirect = False
        for i, seg in enumerate(segments):
            arg = segments[i + 1] if i + 1 < len(segments) else None
            if seg == "status" and arg and arg.isdigit():
                status = int(arg)
            elif seg == "hang" and arg:
                hang = float(arg)
            elif seg == "fail" and arg and arg.isdigit() and path_n <= int(arg):
                status = 500
            elif seg == "redirect":
                redirect = True
            elif seg == "big" and arg and arg.isdigit():
                answer_body = "".join(chr(65 + i % 26) for i in range(int(arg)))
        if redirect:
            status = 302
            if not location:
                scheme = "https" if OPTS.tls_cert else "http"
                location = "%s://127.0.0.1:%d/redirected" % (
                    scheme,
                    self.server.server_address[1],
                )
        if answer_body is None:
            answer_body = "receiver: %d for request %d\n" % (status, n)
        record = {
            "n": n,
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "request_line": self.requestline,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_b64": base64.b64encode(body).decode("ascii"),
            "body": body.decode("utf-8", "replace"),
            "answer": status,
            "hang": hang,
        }
        if OPTS.forward:
            status, answer = self.relay(body)
            record["answer"] = status
            record["dropped"] = n <= OPTS.drop_first
        with LOCK:
            with open(OPTS.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
        if OPTS.forward:
            if record["dropped"]:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            answer_body = answer.decode("utf-8", "replace")
        if hang > 0:
            time.sleep(hang)
        data = answer_body.encode("utf-8")
        try:
            self.send_response(status)
            if status in (301, 302, 303, 307, 308) and location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass

    def relay(self, body):
        """Sends the request on to --forward; returns (status, body)."""
        import http.client
        import urllib.parse

        target = urllib.parse.urlsplit(OPTS.forward)
        conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        try:
            conn.request(self.command, target.path.rstrip("/") + self.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError as e:
            return 502, ("relay: %s" % e).encode()
        finally:
            conn.close()

    do_POST = handle_one
    do_PUT = handle_one
    do_PATCH = handle_one
    do_GET = handle_one
    do_DELETE = handle_one
    do_HEAD = handle_one


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None

    def finish_request(self, request, client_address):
        if self.tls is not None:
            try:
                request.settimeout(30)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (OSError, ssl.SSLError) as e:
                sys.stderr.write("http_receiver: TLS handshake failed: %s\n" % e)
                sys.stderr.flush()
                return
        self.RequestHandlerClass(request, client_address, self)


def serve(argv):
    i = 0
    while i < len(argv):
        a = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        if v is None:
            sys.exit("http_receiver: %s needs a value" % a)
        if a == "--port-file":
            OPTS.port_file = v
        elif a == "--log":
            OPTS.log = v
        elif a == "--control":
            OPTS.control = v
        elif a == "--fail-first":
            OPTS.fail_first = int(v)
        elif a == "--fail-status":
            OPTS.fail_status = int(v)
        elif a == "--status":
            OPTS.status = int(v)
        elif a == "--hang":
            OPTS.hang = float(v)
        elif a == "--location":
            OPTS.location = v
        elif a == "--body":
            OPTS.body = v
        elif a == "--tls-cert":
            OPTS.tls_cert = v
        elif a == "--tls-key":
            OPTS.tls_key = v
        elif a == "--forward":
            OPTS.forward = v
        elif a == "--drop-first":
            OPTS.drop_first = int(v)
        else:
            sys.exit("http_receiver: unknown option %s" % a)
        i += 2
    if not OPTS.port_file or not OPTS.log:
        sys.exit("http_receiver: --port-file and --log are required")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = Server(("127.0.0.1", 0), Handler)
    if OPTS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(OPTS.tls_cert, OPTS.tls_key)
        server.tls = ctx
    open(OPTS.log, "a").close()
    tmp = OPTS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, OPTS.port_file)
    server.serve_forever()


def load(log):
    if not os.path.exists(log):
        return []
    with open(log, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def walk(value, path):
    """The value at a dotted path with [i] indexes; KeyError when absent."""
    token = ""
    parts = []
    for ch in path:
        if ch == ".":
            if token:
                parts.append(token)
            token = ""
        elif ch == "[":
            if token:
                parts.append(token)
            token = "["
        elif ch == "]":
            parts.append(int(token[1:]))
            token = ""
        else:
            token += ch
    if token:
        parts.append(token)
    for p in parts:
        if isinstance(p, int):
            if not isinstance(value, list) or p >= len(value):
                raise KeyError(p)
            value = value[p]
        else:
            if not isinstance(value, dict) or p not in value:
                raise KeyError(p)
            value = value[p]
    return value


def strict_json(data):
    """Parses bytes as one RFC 8259 text: UTF-8, no NaN, no duplicate keys."""

    def pairs(items):
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(items)

    def constant(name):
        raise ValueError("not JSON: %s" % name)

    text = data.decode("utf-8")
    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)


def query(argv):
    if len(argv) < 3:
        sys.exit("usage: http_receiver.py query LOG INDEX FIELD [ARG]")
    records = load(argv[0])
    index = int(argv[1])
    field = argv[2]
    arg = argv[3] if len(argv) > 3 else None
    try:
        r = records[index - 1] if index > 0 else records[index]
    except IndexError:
        sys.stderr.write("http_receiver: no request %d in %s (%d recorded)\n" % (index, argv[0], len(records)))
        sys.exit(2)
    body = base64.b64decode(r["body_b64"])
    out = sys.stdout.buffer
    if field in ("method", "path", "answer", "time", "request_line"):
        out.write(("%s\n" % r[field]).encode("utf-8"))
    elif field == "body":
        out.write(body)
    elif field == "header":
        for k, v in r["headers"]:
            if k.lower() == arg.lower():
                out.write((v + "\n").encode("utf-8", "surrogateescape"))
    elif field == "headers":
        for k, v in r["headers"]:
            out.write(("%s: %s\n" % (k, v)).encode("utf-8", "surrogateescape"))
    elif field == "headers-json":
        out.write(json.dumps({k.lower(): v for k, v in r["headers"]}).encode("utf-8"))
    elif field == "json":
        try:
            value = walk(strict_json(body), arg or "")
        except KeyError:
            sys.stderr.write("http_receiver: no %s in the body\n" % arg)
            sys.exit(1)
        out.write((json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
    elif field == "text":
        try:
            value = walk(strict_json(body), arg or "")
        except KeyError:
            sys.stderr.write("http_receiver: no %s in the body\n" % arg)
            sys.exit(1)
        if not isinstance(value, str):
            sys.stderr.write("http_receiver: %s is not a string\n" % arg)
            sys.exit(1)
        out.write(value.encode("utf-8"))
    elif field == "valid-json":
        try:
            strict_json(body)
        except ValueError as e:
            sys.stderr.write("http_receiver: not JSON: %s\n" % e)
            sys.exit(1)
    else:
        sys.exit("http_receiver: unknown field %s" % field)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(sys.argv[2:])
    elif cmd == "query":
        query(sys.argv[2:])
    elif cmd == "count":
        print(len(load(sys.argv[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
