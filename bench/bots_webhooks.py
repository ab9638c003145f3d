#!/usr/bin/env python3
"""bots_webhooks — payment webhooks at a fixed rate into the front, and their latency.

Usage: bench/bots_webhooks.py --url URL --body FILE --header 'name: value' [--header ...]
                              --rate R --clients C --duration S --log-file OUT
       bench/bots_webhooks.py --stats OUT [--metrics-before F --metrics-after F]

The first form is bench/openloop.py's open loop (see its docstring for why a
plain `h2load --rps` sends synchronized bursts) for POSTs: G h2load processes
(--h1, one request in flight per connection, keep-alive) of about C/G
connections each, started spread over one period and each with a rate within
+-1% of R/C, every request POSTing FILE with the given headers. The
per-request logs are concatenated into OUT (h2load --log-file format: start
µs, status, µs to the end of the response).

The second form prints KEY=VALUE lines from such a log: n, n200, nbad (other
statuses, failed streams included), rate (offered, n / span), p50 p90 p99
p999 max (µs, nearest rank), le5ms_pct (% answered within 5 ms), late_pct (% of requests slower than one
client's period: its next request then left late, a wait the figures do not
show). With two scrapes of the front's /metrics it adds front_n and
front_p50/p90/p99 (µs) and front_le5ms_pct: the upper bucket bound of
rastro_front_webhook_duration_seconds{kind="gateway"} (request read -> 200
after the inbox journal's fsync) over the difference of the scrapes.
"""

import argparse
import math
import os
import re
import subprocess
import sys
import time

METRIC = 'rastro_front_webhook_duration_seconds_bucket{kind="gateway",le="'


def pct(vals, p):
    if not vals:
        return 0
    return vals[max(0, math.ceil(p / 100.0 * len(vals)) - 1)]


def buckets(path):
    out = {}
    for line in open(path):
        if line.startswith(METRIC):
            name, _, v = line.rpartition(" ")
            le = name[len(METRIC):].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(v)
    return out


def stats(a):
    durs, starts = [], []
    n200 = nbad = 0
    with open(a.stats) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            start, status, dur = int(parts[0]), int(parts[1]), int(parts[2])
            starts.append(start)
            durs.append(dur)
            if status == 200:
                n200 += 1
            else:
                nbad += 1
    durs.sort()
    n = len(durs)
    span = (max(starts) - min(starts)) / 1e6 if n > 1 else 0.0
    print("n=%d" % n)
    print("n200=%d" % n200)
    print("nbad=%d" % nbad)
    print("rate=%.0f" % (n / span if span > 0 else 0))
    for p, tag in ((50, "p50"), (90, "p90"), (99, "p99"), (99.9, "p999")):
        print("%s=%d" % (tag, pct(durs, p)))
    print("max=%d" % (durs[-1] if durs else 0))
    print("le5ms_pct=%.2f" % (100.0 * sum(1 for d in durs if d <= 5000) / n if n else 0))
    if a.period_us:
        print("late_pct=%.2f" % (100.0 * sum(1 for d in durs if d > a.period_us) / n if n else 0))
    if a.metrics_before and a.metrics_after:
        b, e = buckets(a.metrics_before), buckets(a.metrics_after)
        d = sorted((le, e[le] - b.get(le, 0.0)) for le in e)
        total = d[-1][1] if d else 0
        print("front_n=%.0f" % total)
        for q, tag in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
            v = "-"
            for le, c in d:
                if total > 0 and c >= q * total:
                    v = "inf" if le == float("inf") else "%.0f" % (le * 1e6)
                    break
            print("front_%s=%s" % (tag, v))
        le5 = dict(d).get(0.005)
        print("front_le5ms_pct=%s" % ("%.2f" % (100.0 * le5 / total) if le5 is not None and total else "-"))
    return 0


def load(a):
    groups = a.groups or max(1, min(50, a.clients // 5))
    groups = min(groups, a.clients)
    per_client = a.rate / a.clients
    if per_client > 100:
        sys.exit("bots_webhooks: %.1f rps per connection is above h2load's 100: use more "
                 "--clients" % per_client)
    period = 1.0 / per_client
    sizes = [a.clients // groups + (1 if g < a.clients % groups else 0) for g in range(groups)]
    spread = [(-1.0 + 2.0 * g / (groups - 1)) * 0.01 if groups > 1 else 0.0 for g in range(groups)]
    mean = sum(s * n for s, n in zip(spread, sizes)) / a.clients
    rates = [per_client * (1 + s - mean) for s in spread]
    headers = []
    for h in a.header:
        headers += ["-H", h]
    procs = []
    t0 = time.monotonic()
    for g in range(groups):
        delay = t0 + g * period / groups - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        log = "%s.%d" % (a.log_file, g)
        if os.path.exists(log):
            os.unlink(log)          # h2load appends to an existing log
        out = open("%s.%d.out" % (a.log_file, g), "w")
        cmd = ["h2load", "--h1", "-t", "1", "-c", str(sizes[g]), "--rps", "%.4f" % rates[g],
               "-D", "%g" % a.duration, "-d", a.body] + headers + ["--log-file", log, a.url]
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), log, out.name))
    rc = 0
    with open(a.log_file, "w") as merged:
        for p, log, outname in procs:
            rc |= p.wait()
            if os.path.exists(log):
                with open(log) as f:
                    merged.write(f.read())
                os.unlink(log)
            text = open(outname).read()
            if "requests:" not in text:
                sys.stderr.write(text)
                rc |= 1
            os.unlink(outname)
    print("bots_webhooks: %d h2load processes, %d connections, %.3f..%.3f rps per connection"
          % (groups, a.clients, min(rates), max(rates)))
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--body")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--rate", type=float)
    ap.add_argument("--clients", type=int)
    ap.add_argument("--groups", type=int, default=0)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--log-file")
    ap.add_argument("--stats")
    ap.add_argument("--period-us", type=float, default=0)
    ap.add_argument("--metrics-before")
    ap.add_argument("--metrics-after")
    a = ap.parse_args()
    if a.stats:
        return stats(a)
    if not (a.url and a.body and a.rate and a.clients and a.duration and a.log_file):
        ap.error("--url, --body, --rate, --clients, --duration and --log-file are needed")
    return load(a)


if __name__ == "__main__":
    sys.exit(main())
