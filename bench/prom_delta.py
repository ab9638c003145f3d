#!/usr/bin/env python3
"""prom_delta — what happened between two scrapes of rastro-front's /metrics.

Usage: bench/prom_delta.py BEFORE AFTER

Prints shell-evaluable KEY=VALUE lines from the difference of the two scrapes:
  commits           journal group commits (one per event-loop iteration with clicks)
  per_commit        clicks per commit (the group-commit batch size)
  commit_p50/p99    journal commit time, upper bound of the histogram bucket (µs)
  redirect_p50/p99  the front's own request-to-302 time, same (µs): queueing
                    in the client, the kernel and the run queue is not in it
A bucket bound of "inf" means above the largest bucket.
"""
import re
import sys


def scrape(path):
    vals = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        name, _, v = line.rpartition(" ")
        try:
            vals[name.strip()] = float(v)
        except ValueError:
            pass
    return vals


def quantile(before, after, metric, q):
    buckets = []
    for k, v in after.items():
        m = re.match(re.escape(metric) + r'_bucket\{le="([^"]+)"\}$', k)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, v - before.get(k, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return "-"
    total = buckets[-1][1]
    for le, c in buckets:
        if c >= q * total:
            return "inf" if le == float("inf") else "%.0f" % (le * 1e6)
    return "inf"


def main():
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2 if len(sys.argv) != 2 else 0
    b, a = scrape(sys.argv[1]), scrape(sys.argv[2])
    d = lambda k: a.get(k, 0.0) - b.get(k, 0.0)
    commits = d("rastro_journal_commits_total")
    clicks = d("rastro_clicks_total")
    print("commits=%.0f" % commits)
    print("per_commit=%.1f" % (clicks / commits if commits else 0))
    for q, tag in ((0.5, "p50"), (0.99, "p99")):
        print("commit_%s=%s" % (tag, quantile(b, a, "rastro_journal_commit_seconds", q)))
        print("redirect_%s=%s" % (tag, quantile(b, a, "rastro_redirect_duration_seconds", q)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
