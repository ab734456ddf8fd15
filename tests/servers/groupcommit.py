"""Drives `serve --listen` for the group-commit tests (FastCGI, record by
record, through tests/fcgiclient.py).  Standard library only.

  groupcommit.py batch SOCKET DB SECRET
      Holds the SQLite database DB's write lock (BEGIN IMMEDIATE on a
      connection of its own; DB "-": the caller holds a lock instead and
      lets it go about 1.5 s later), sends img-first, and once it waits for the lock, three
      more deliveries at once (img-a, img-poison, img-b) which queue
      behind it; then lets the lock go.  Prints "ID STATUS BODY" per
      answer.
  groupcommit.py crash SOCKET SECRET COUNT THREADS OUT
      Posts deliveries of img-0 ... img-COUNT-1 from THREADS threads, as
      fast as answers come, appending "ID STATUS" to OUT (flushed) as each
      answer arrives; a connection error ends a thread quietly (the test
      kills the server under it).
"""
import hashlib
import hmac
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fcgiclient as fc  # noqa: E402


def body_for(image_id):
    return ('{"id":"%s","uploaded":"2024-01-01T12:00:00.000Z"}' % image_id).encode()


def post(address, secret, image_id):
    body = body_for(image_id)
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    params = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
              "CONTENT_TYPE": "application/json", "REMOTE_ADDR": "127.0.0.1",
              "SCRIPT_NAME": "/webhook", "HTTP_X_SIGNATURE": sig}
    s = fc.connect(address, timeout=30)
    try:
        s.sendall(fc.request_bytes(params, body))
        status, _, text = fc.read_answer(s)
    finally:
        s.close()
    return status, text


def batch(address, db, secret):
    holder = None
    if db != "-":  # "-": the caller holds a lock img-first's writer waits for
        holder = sqlite3.connect(db, isolation_level=None, timeout=10)
        holder.execute("BEGIN IMMEDIATE")
    answers = {}

    def one(image_id):
        answers[image_id] = post(address, secret, image_id)

    first = threading.Thread(target=one, args=("img-first",))
    first.start()
    time.sleep(0.5)  # img-first's writer now waits for the lock
    rest = [threading.Thread(target=one, args=(i,)) for i in ("img-a", "img-poison", "img-b")]
    for t in rest:
        t.start()
    time.sleep(1.0)  # they queue behind it
    if holder is not None:
        holder.execute("ROLLBACK")
        holder.close()
    for t in [first] + rest:
        t.join(30)
    for image_id in ("img-first", "img-a", "img-poison", "img-b"):
        status, text = answers.get(image_id, ("none", ""))
        print(image_id, status, text)


def crash(address, secret, count, threads, out):
    lock = threading.Lock()
    next_id = [0]
    f = open(out, "a")

    def worker():
        while True:
            with lock:
                n = next_id[0]
                next_id[0] += 1
            if n >= count:
                return
            image_id = "img-%d" % n
            try:
                status, _ = post(address, secret, image_id)
            except (OSError, EOFError):
                return
            with lock:
                f.write("%s %s\n" % (image_id, status))
                f.flush()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


if __name__ == "__main__":
    if sys.argv[1] == "batch":
        batch(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        crash(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
