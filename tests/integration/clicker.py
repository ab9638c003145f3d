#!/usr/bin/env python3
"""clicker — drives GET /go/<slug> for the integration tests.

Sends COUNT requests over CONCURRENCY keep-alive connections (reconnecting
when the server goes away, so it survives a front being killed) and prints
one line per answered request: "<status> <location or ->". Requests that got
no answer (connection reset mid-request) print "ERR -". Stops after COUNT
requests or DURATION seconds, whichever comes first.
"""
import argparse
import http.client
import sys
import threading
import time
import urllib.parse


def worker(host, port, path, count, deadline, headers, out, lock):
    conn = None
    sent = 0
    while sent < count and time.time() < deadline:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            line = "%d %s" % (resp.status, resp.getheader("Location") or "-")
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            line = "ERR -"
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.05)
        sent += 1
        with lock:
            out.append(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="e.g. http://127.0.0.1:8080/go/curso?utm_source=fb")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--header", action="append", default=[], help="Name: value")
    args = ap.parse_args()
    u = urllib.parse.urlsplit(args.url)
    path = u.path + ("?" + u.query if u.query else "")
    headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    out, lock = [], threading.Lock()
    deadline = time.time() + args.duration
    per = [args.count // args.concurrency + (1 if i < args.count % args.concurrency else 0)
           for i in range(args.concurrency)]
    threads = [threading.Thread(target=worker, args=(u.hostname, u.port or 80, path, n, deadline, headers, out, lock))
               for n in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


if __name__ == "__main__":
    main()
