#!/usr/bin/env python3
"""h2load_stats — latency percentiles from an h2load --log-file.

Usage: bench/h2load_stats.py LOGFILE [--period-us P]
       bench/h2load_stats.py --summary OUTFILE

h2load writes one tab-separated line per request: start time (µs since the
epoch), HTTP status (-1 = failed stream), µs until the end of the response.
Prints shell-evaluable KEY=VALUE lines:

  n         requests in the log
  n3xx      responses with a 3xx status
  nbad      requests with any other status (failed streams included)
  span_s    seconds between the first and the last request start
  rate      n / span_s (the rate actually offered, for open-loop runs)
  p50 p99 p999 max   latency in µs (nearest-rank percentiles)
  idle_ms_pct  % of the 1-ms windows of the run in which no request
            started: a measure of burstiness (about 0 for a steady open
            load at several requests per ms; 80+ for h2load --rps bursts)
  late_pct  with --period-us P (open loop: 1/rps of one client): % of
            requests that took longer than P. Each h2load client has one
            HTTP/1.1 request in flight, so when a response takes longer than
            the client's period its next request leaves late, and that wait
            is not in the measured latency (coordinated omission). A small
            late_pct means the open-loop figures hide (almost) nothing.

With --summary, reads h2load's own report (its standard output) instead of
a log file and prints n, n3xx, nbad and span_s (the run's duration as h2load
reports it). For runs where only the counts matter: h2load's --log-file
costs it a write per request, CPU that the machine under test then lacks.
"""

import re

import math
import sys


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    k = max(0, math.ceil(p / 100.0 * len(sorted_vals)) - 1)
    return sorted_vals[k]


def summary(path):
    with open(path) as f:
        text = f.read()
    fin = re.search(r"^finished in ([0-9.]+)(m?s),", text, re.M)
    req = re.search(r"^requests: (\d+) total", text, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    if not (fin and req and codes):
        print("h2load_stats: %s is not an h2load report" % path, file=sys.stderr)
        return 1
    span = float(fin.group(1)) / (1000.0 if fin.group(2) == "ms" else 1.0)
    n = int(req.group(1))
    n3xx = int(codes.group(2))
    print("n=%d" % n)
    print("n3xx=%d" % n3xx)
    print("nbad=%d" % (n - n3xx))
    print("span_s=%.3f" % span)
    return 0


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    if argv[1] == "--summary":
        return summary(argv[2]) if len(argv) == 3 else 2
    period = None
    if len(argv) >= 4 and argv[2] == "--period-us":
        period = float(argv[3])
    durs, starts = [], []
    n3xx = nbad = 0
    with open(argv[1]) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            start, status, dur = int(parts[0]), int(parts[1]), int(parts[2])
            starts.append(start)
            durs.append(dur)
            if 300 <= status < 400:
                n3xx += 1
            else:
                nbad += 1
    durs.sort()
    n = len(durs)
    span = (max(starts) - min(starts)) / 1e6 if n > 1 else 0.0
    out = {
        "n": n,
        "n3xx": n3xx,
        "nbad": nbad,
        "span_s": "%.3f" % span,
        "rate": "%.0f" % (n / span if span > 0 else 0),
        "p50": pct(durs, 50),
        "p99": pct(durs, 99),
        "p999": pct(durs, 99.9),
        "max": durs[-1] if durs else 0,
    }
    if n > 1:
        t0 = min(starts)
        ms = set((t - t0) // 1000 for t in starts)
        windows = (max(starts) - t0) // 1000 + 1
        out["idle_ms_pct"] = "%.0f" % (100.0 * (windows - len(ms)) / windows)
    if period is not None:
        late = sum(1 for d in durs if d > period)
        out["late_pct"] = "%.2f" % (100.0 * late / n if n else 0)
    for k, v in out.items():
        print("%s=%s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
