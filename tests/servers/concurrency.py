"""Drives one `serve --listen` process through stalled, idle and kept-open
connections (see test-serve-concurrency.sh).  Usage:

  concurrency.py ADDRESS PID SECRET READ_TIMEOUT [--memory]

ADDRESS is a unix socket path or HOST:PORT.  Prints one line per check;
exits 1 at the first failure.
"""
import hashlib
import hmac
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ["top_srcdir"], "tests"))
import fcgiclient as fc  # noqa: E402

address, pid, secret, read_timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
check_memory = "--memory" in sys.argv
if not address.startswith("/"):
    host, _, port = address.rpartition(":")
    address = (host, int(port))


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg)


def body_for(image_id):
    return ('{"id":"%s","uploaded":"2024-01-01T12:00:00.000Z"}' % image_id).encode()


def params_for(body):
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json", "REMOTE_ADDR": "127.0.0.1",
            "SCRIPT_NAME": "/webhook", "HTTP_X_SIGNATURE": sig}


def post(image_id, sock=None, keep=False):
    s = sock or fc.connect(address)
    body = body_for(image_id)
    s.sendall(fc.request_bytes(params_for(body), body, keep=keep))
    answer = fc.read_answer(s)
    if sock is None and not keep:
        s.close()
    return answer


def expect_ok(answer, what):
    status, _, body = answer
    if (status, body) != (200, "OK"):
        fail("%s: expected 200 OK, got %d %r" % (what, status, body))


def private_kib():
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith(("Private_Dirty:", "Private_Clean:")):
                total += int(line.split()[1])
    return total


# Warm up: the process opens its database on the first request.
expect_ok(post("img-warm"), "first request")

# --- A request is answered while others stall, in every way a client can.
silent = fc.connect(address)                          # sends nothing
stalled = []
for i in range(3):                                    # half a record of parameters
    s = fc.connect(address)
    whole = fc.request_bytes(params_for(b"{}"))
    s.sendall(whole[:30 + i])
    stalled.append(s)
for i in range(3):                                    # parameters, then half the body
    s = fc.connect(address)
    body = body_for("img-half-%d" % i)
    whole = fc.request_bytes(params_for(body), body)
    s.sendall(whole[:len(whole) - 30])
    stalled.append(s)
# A large body (more than the main thread waits for) that stalls: a worker
# is reading it, and read_timeout must free it.
big = fc.connect(address)
body = b'{"id":"img-big","pad":"' + b"x" * 100000 + b'"}'
whole = fc.request_bytes(params_for(body), body)
big.sendall(whole[:80000])
stalled.append(big)
kept = fc.connect(address)
expect_ok(post("img-keep-1", kept, keep=True), "a request on a kept-open connection")
t0 = time.monotonic()
expect_ok(post("img-a"), "a request while 8 connections stall and one idles")
elapsed = time.monotonic() - t0
for s in [silent, kept] + stalled:
    if not fc.is_open(s):
        fail("a stalled connection was closed before its read_timeout (the answer "
             "took %.1f s)" % elapsed)
ok("answered in %.2f s while 7 half-sent requests, a silent and an idle kept-open "
   "connection were held" % elapsed)
expect_ok(post("img-keep-2", kept, keep=True), "a second request on the kept-open connection")
ok("a kept-open connection carries a second request")

# A large body that arrives in pieces, slowly, is received whole by a worker.
slow = fc.connect(address)
body = b'{"id":"img-slow","uploaded":"2024-01-01T12:00:00.000Z","pad":"' + b"y" * 200000 + b'"}'
whole = fc.request_bytes(params_for(body), body)
for i in range(0, len(whole), 25000):
    slow.sendall(whole[i:i + 25000])
    time.sleep(0.05)
expect_ok(fc.read_answer(slow), "a 200 kB body sent slowly in pieces")
slow.close()
ok("a 200 kB body sent slowly in pieces was received whole")

# --- read_timeout: the stalled connections are dropped, the idle kept one is not.
deadline = time.monotonic() + read_timeout + 30
pending = [silent] + stalled
while pending and time.monotonic() < deadline:
    pending = [s for s in pending if fc.is_open(s)]
    time.sleep(0.2)
if pending:
    fail("%d stalled connections still open %d s after read_timeout" % (len(pending), 30))
ok("stalled and silent connections closed after read_timeout")
if not fc.is_open(kept):
    fail("an idle kept-open connection was closed (keep-alive idles are not read timeouts)")
ok("the idle kept-open connection stays open")
for s in [silent] + stalled:
    s.close()

# --- Hundreds of connections: bounded, and requests still answered.
before = private_kib() if check_memory else 0
crowd = [fc.connect(address) for _ in range(300)]
expect_ok(post("img-b"), "a request while 300 idle connections are open")
time.sleep(0.5)
closed = sum(1 for s in crowd + [kept] if not fc.is_open(s))
if closed < 300 + 1 - 256:
    fail("only %d of 301 idle connections closed: no connection limit" % closed)
ok("a request answered beside 300 idle connections; %d of them closed (limit)" % closed)
if check_memory:
    grown = private_kib() - before
    if grown > 4096:
        fail("private memory grew by %d KiB with 300 idle connections" % grown)
    ok("private memory grew by %d KiB with 300 idle connections" % grown)
for s in crowd + [kept]:
    s.close()

# --- SIGTERM: the request in hand is finished, idle connections do not hold
# the process, and it exits (the shell checks the status).
in_hand = fc.connect(address)
body = body_for("img-term")
whole = fc.request_bytes(params_for(body), body)
in_hand.sendall(whole[:len(whole) - 20])
idle = fc.connect(address)
time.sleep(0.3)
os.kill(pid, signal.SIGTERM)
time.sleep(0.3)
in_hand.sendall(whole[len(whole) - 20:])
expect_ok(fc.read_answer(in_hand), "the request in hand when SIGTERM came")
ok("the request in hand when SIGTERM came was answered")
idle.close()
in_hand.close()
