#!/usr/bin/env python3
"""openloop — a fixed-rate (open-loop) h2load load without synchronized bursts.

Usage: bench/openloop.py --url URL --rate R --clients C [--groups G]
                         --duration S --log-file OUT

Why: with `h2load --rps`, each connection has a timer of period 1/rps started
when it connects, and all connections of one h2load connect in the same
millisecond, so their timers stay in phase: -c 200 --rps 57 sends bursts of
200 requests every 17.5 ms with nothing in between (measured here: 82% of the
milliseconds of a run saw no request start, and nginx's p50 at 20% load was
2-3 ms, all of it queueing behind the burst). (Above 100 rps per connection
h2load also clamps the timer to 10 ms and sends the requests of a tick
back-to-back.) That is a periodic burst test, not a fixed rate.

This launcher runs G h2load processes of about C/G connections each (the
same h2load, the same options otherwise: --h1 -t 1 --rps R/C -D S), starts
them spread over one period (1/rps) and gives each a per-connection rate
within +-1% of R/C (the offsets drift during the run instead of staying
fixed). The total stays R. The per-request logs are concatenated into OUT
(the format of h2load --log-file) and the counts are printed in h2load's own
format ("finished in", "requests:", "status codes:"), summed.
"""

import argparse
import os
import re
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--rate", type=float, required=True, help="total requests per second")
    ap.add_argument("--clients", type=int, required=True, help="total connections")
    ap.add_argument("--groups", type=int, default=0,
                    help="h2load processes (default: clients/5, at most 50)")
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--log-file", required=True)
    a = ap.parse_args()

    groups = a.groups or max(1, min(50, a.clients // 5))
    groups = min(groups, a.clients)
    per_client = a.rate / a.clients
    if per_client > 100:
        sys.exit("openloop: %.1f rps per connection is above h2load's 100 (its timer "
                 "clamps to 10 ms and sends bursts): use more --clients" % per_client)
    period = 1.0 / per_client
    sizes = [a.clients // groups + (1 if g < a.clients % groups else 0) for g in range(groups)]
    # Rates spread symmetrically in +-1%, weighted so the total is exact.
    spread = [(-1.0 + 2.0 * g / (groups - 1)) * 0.01 if groups > 1 else 0.0 for g in range(groups)]
    mean = sum(s * n for s, n in zip(spread, sizes)) / a.clients
    rates = [per_client * (1 + s - mean) for s in spread]

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
               "-D", "%g" % a.duration, "--log-file", log, a.url]
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), log, out.name))
    rc = 0
    tot = {"total": 0, "started": 0, "done": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
    with open(a.log_file, "w") as merged:
        for p, log, outname in procs:
            rc |= p.wait()
            with open(log) as f:
                merged.write(f.read())
            os.unlink(log)
            text = open(outname).read()
            m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done", text)
            s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
            if not m or not s:
                sys.stderr.write(text)
                rc |= 1
                continue
            for k, v in zip(("total", "started", "done"), m.groups()):
                tot[k] += int(v)
            for k, v in zip(("2xx", "3xx", "4xx", "5xx"), s.groups()):
                tot[k] += int(v)
            os.unlink(outname)
    print("openloop: %d h2load processes, %d connections, %.3f..%.3f rps per connection"
          % (groups, a.clients, min(rates), max(rates)))
    print("finished in %.2fs, %.2f req/s" % (a.duration, tot["done"] / a.duration))
    print("requests: %d total, %d started, %d done" % (tot["total"], tot["started"], tot["done"]))
    print("status codes: %d 2xx, %d 3xx, %d 4xx, %d 5xx" % (tot["2xx"], tot["3xx"], tot["4xx"], tot["5xx"]))
    return rc


if __name__ == "__main__":
    sys.exit(main())
