#!/usr/bin/env python3
"""The reference bench/run.sh measures cfimages-webhook against.

What a small Flask (or Django view, or Go net/http) webhook receiver does,
written with the Python 3 standard library only so that it runs anywhere
without pip: a threaded HTTP/1.1 server (keep-alive, as Flask's production
servers offer) that, for each POST,

  1. reads the body (Content-Length),
  2. checks the X-Signature header: hex HMAC-SHA256 of the raw body,
     optional "sha256=" prefix, compared with hmac.compare_digest,
  3. parses the body with json.loads and takes its "id",
  4. in one BEGIN IMMEDIATE transaction: inserts a webhook_deliveries row,
     UPDATEs the image's status and updated_at in cloudflare_images, and
     inserts a cloudflare_image_logs row holding the body,
  5. answers 200 "OK" (401 / 400 / 404 like the real thing).

The database is one created by `cfimages-webhook init` (the same tables
and indexes: the same file layout), opened in WAL mode with a busy timeout
and PRAGMA synchronous FULL or NORMAL as asked.  SQLite connections are
pooled (one per concurrent request, reused), as an application's ORM
would do, so the reference is not charged for reopening the database.

It does no more than that: no duplicate detection, no hooks, no UTF-8 or
duplicate-key validation.  That keeps the comparison in the reference's
favour.

Usage: reference_receiver.py --port N --db FILE --secret S
                             [--synchronous FULL|NORMAL]
Prints "ready" on stdout once listening; SIGTERM stops it.
"""

import argparse
import hashlib
import hmac
import json
import queue
import signal
import sqlite3
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1048576  # bytes, the same default as cfimages-webhook
BUSY_TIMEOUT_S = 5.0  # SQLite busy timeout, as STORE_BUSY_TIMEOUT_MS


def now_text():
    """UTC 'YYYY-MM-DDTHH:MM:SS.sssZ', the format cfimages-webhook stores."""
    t = datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class Pool:
    """SQLite connections, one per concurrent request, created on demand."""

    def __init__(self, path, synchronous):
        self.path = path
        self.synchronous = synchronous
        self.idle = queue.SimpleQueue()

    def _open(self):
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S,
                             isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = " + self.synchronous)
        return db

    def get(self):
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            return self._open()

    def put(self, db):
        self.idle.put(db)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like lighttpd in front of ours
    # Headers and body leave in two writes: without TCP_NODELAY the second
    # waits for the client's delayed ACK (40 ms), which would be unfair.
    disable_nagle_algorithm = True
    server_version = "reference"
    sys_version = ""

    def log_message(self, fmt, *args):  # no access log, as ours has none
        pass

    def answer(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return self.answer(413, "Payload too large")
        body = self.rfile.read(length)

        sig = self.headers.get("X-Signature")
        if sig is None:
            return self.answer(401, "Missing signature")
        if sig.startswith("sha256="):
            sig = sig[len("sha256="):]
        want = hmac.new(self.server.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig.lower()):
            return self.answer(401, "Invalid signature")

        try:
            payload = json.loads(body)
            image_id = payload["id"]
            if not isinstance(image_id, str) or not image_id:
                raise ValueError("id")
        except (ValueError, KeyError, TypeError):
            return self.answer(400, "Invalid payload")
        status = "failed" if "error" in payload else "uploaded"

        when = now_text()
        db = self.server.pool.get()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    "INSERT INTO webhook_deliveries (received_at, status_code,"
                    " reason, remote_addr, scheme, image_id, body_sha256,"
                    " body_size) VALUES (?, 200, 'applied', ?, 'hex', ?, ?, ?)",
                    (when, self.client_address[0], image_id,
                     hashlib.sha256(body).hexdigest(), len(body)))
                delivery_id = cur.lastrowid
                cur = db.execute(
                    "UPDATE cloudflare_images SET status = ?, updated_at = ?"
                    " WHERE cloudflare_id = ?", (status, when, image_id))
                if cur.rowcount == 0:
                    db.execute("ROLLBACK")
                    return self.answer(404, "Image not found")
                db.execute(
                    "INSERT INTO cloudflare_image_logs (image_id, event_type,"
                    " message, data, timestamp, delivery_id)"
                    " VALUES (?, 'status_changed', ?, ?, ?, ?)",
                    (image_id, status, body.decode("utf-8", "replace"), when,
                     delivery_id))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            print("reference: sqlite: %s" % e, file=sys.stderr)
            return self.answer(500, "Internal server error")
        finally:
            self.server.pool.put(db)
        return self.answer(200, "OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    args = ap.parse_args()

    ThreadingHTTPServer.request_queue_size = 128
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.secret = args.secret.encode()
    server.pool = Pool(args.db, args.synchronous)
    # Stop on SIGTERM from another thread: shutdown() waits for serve_forever.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(
        target=server.shutdown, daemon=True).start())
    print("ready", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
