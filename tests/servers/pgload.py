"""Signed `uploaded` deliveries over HTTP for the multi-node PostgreSQL
tests (tests/pgnodeslib.sh).  Standard library only.

  pgload.py pair URL_A URL_B SECRET PREFIX COUNT THREADS OUT
      for each of COUNT ids PREFIXnnnnn, the same delivery to both URLs at
      once; OUT gets "ID A|B STATUS BODY" lines.
  pgload.py stream URL SECRET PREFIX COUNT THREADS RATE OUT
      COUNT deliveries of distinct ids, at most RATE started per second;
      OUT gets "ID STATUS BODY" lines as answers come (STATUS "none" when
      no answer came: a connection error or a timeout), flushed each.

The body of id X is {"id":"X","uploaded":"2024-01-01T12:00:00.000Z"},
signed with X-Signature (hex HMAC-SHA256 of the body).
"""
import concurrent.futures
import hashlib
import hmac
import http.client
import sys
import threading
import time
import urllib.parse


def body_for(image_id):
    return ('{"id":"%s","uploaded":"2024-01-01T12:00:00.000Z"}' % image_id).encode()


def post(url, secret, image_id, timeout=60):
    """(status, body); ("none", reason) when no answer came."""
    u = urllib.parse.urlsplit(url)
    body = body_for(image_id)
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        c.request("POST", u.path, body=body, headers={
            "Content-Type": "application/json", "X-Signature": sig, "Connection": "close"})
        r = c.getresponse()
        answer = r.read().decode(errors="replace").replace("\n", " ")
        c.close()
        return str(r.status), answer
    except Exception as e:  # noqa: BLE001 - any failure is "no answer"
        return "none", type(e).__name__


def main():
    mode = sys.argv[1]
    lock = threading.Lock()
    if mode == "pair":
        url_a, url_b, secret, prefix = sys.argv[2:6]
        count, threads, out = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
        ids = ["%s%05d" % (prefix, i) for i in range(count)]
        with open(out, "w") as f, concurrent.futures.ThreadPoolExecutor(threads) as ex:
            def one(image_id, node, url):
                status, answer = post(url, secret, image_id)
                with lock:
                    f.write("%s %s %s %s\n" % (image_id, node, status, answer))
            futures = []
            for image_id in ids:
                # Submitted one after the other: the two start together.
                futures.append(ex.submit(one, image_id, "A", url_a))
                futures.append(ex.submit(one, image_id, "B", url_b))
            for fu in futures:
                fu.result()
    elif mode == "stream":
        url, secret, prefix = sys.argv[2:5]
        count, threads, rate, out = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
        with open(out, "w") as f, concurrent.futures.ThreadPoolExecutor(threads) as ex:
            def one(image_id):
                status, answer = post(url, secret, image_id)
                with lock:
                    f.write("%s %s %s\n" % (image_id, status, answer))
                    f.flush()
            futures = []
            start = time.monotonic()
            for i in range(count):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(ex.submit(one, "%s%05d" % (prefix, i)))
            for fu in futures:
                fu.result()
    else:
        sys.exit("usage: pgload.py pair|stream ...")


main()
