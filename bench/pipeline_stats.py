#!/usr/bin/env python3
"""pipeline_stats — small calculations for bench/pipeline.sh.

Usage:
  pipeline_stats.py sum PROMFILE METRIC
      sum of METRIC over all its label sets in a Prometheus text file
      (a .prom heartbeat file of a node, or a scrape of /metrics)
  pipeline_stats.py hist BEFORE AFTER METRIC
      the histogram METRIC's observations between two scrapes; prints
      shell-evaluable KEY=VALUE lines:
        n         observations
        mean      sum/count (seconds)
        p50 p90 p99   quantiles in seconds, linearly interpolated inside the
                      bucket (Prometheus' histogram_quantile), "inf" above
                      the largest bound
        p50_le p99_le the upper bound of the bucket holding the quantile
  pipeline_stats.py join EVENTS_JSON CLICKS_TSV
      click -> accepted latency per event: EVENTS_JSON is the fake Meta's
      GET /_fake/events (each with event_id and "received", Unix seconds as
      a float), CLICKS_TSV lines "event_id<TAB>clicked_at in Unix ms" from
      the clicks table. Prints KEY=VALUE lines: n (events matched), missing
      (clicks never accepted), extra (accepted events without a click row),
      dups (event_ids accepted more than once), p50 p90 p99 p999 max
      (milliseconds, nearest rank; first acceptance of each event_id).
  pipeline_stats.py sample STATS_URL
      once a second until killed, prints "unix_time events" (the "events"
      count of the Meta stand-in's GET /_fake/stats; empty when it did not
      answer), flushed per line. One process on one keep-alive connection:
      a shell loop of date + curl + grep costs the machine under test
      several process starts a second.
"""
import http.client
import time
import urllib.parse
import json
import math
import re
import sys


def scrape(path):
    vals = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        name, _, v = line.strip().rpartition(" ")
        try:
            vals[name.strip()] = float(v)
        except ValueError:
            pass
    return vals


def cmd_sum(path, metric):
    s = 0.0
    for k, v in scrape(path).items():
        if k == metric or k.startswith(metric + "{"):
            s += v
    print("%.0f" % s)


def cmd_hist(before_path, after_path, metric):
    before, after = scrape(before_path), scrape(after_path)
    buckets = {}
    for k, v in after.items():
        m = re.match(re.escape(metric) + r'_bucket\{(?:.*,)?le="([^"]+)"\}$', k)
        if m:
            le = math.inf if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0.0) + v - before.get(k, 0.0)
    bl = sorted(buckets.items())
    n = bl[-1][1] if bl else 0.0
    cnt = sum(after.get(k, 0) - before.get(k, 0) for k in after if k.startswith(metric + "_count"))
    sm = sum(after.get(k, 0) - before.get(k, 0) for k in after if k.startswith(metric + "_sum"))
    print("n=%.0f" % n)
    print("mean=%s" % ("%.3f" % (sm / cnt) if cnt > 0 else "-"))
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        if n <= 0:
            print("%s=-\n%s_le=-" % (name, name))
            continue
        rank = q * n
        prev_le, prev_c = 0.0, 0.0
        for le, c in bl:
            if c >= rank:
                if le == math.inf:
                    print("%s=inf\n%s_le=inf" % (name, name))
                else:
                    frac = (rank - prev_c) / (c - prev_c) if c > prev_c else 1.0
                    print("%s=%.3f\n%s_le=%g" % (name, prev_le + (le - prev_le) * frac, name, le))
                break
            prev_le, prev_c = le, c


def cmd_join(events_path, clicks_path):
    clicked = {}
    for line in open(clicks_path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 2 and parts[1]:
            clicked[parts[0]] = float(parts[1])
    first = {}
    dups = 0
    for ev in json.load(open(events_path)):
        eid = ev.get("event_id")
        if eid in first:
            dups += 1
            continue
        first[eid] = ev["received"] * 1000.0
    lat = sorted(first[e] - clicked[e] for e in first if e in clicked)
    extra = sum(1 for e in first if e not in clicked)
    missing = sum(1 for e in clicked if e not in first)

    def pct(p):
        if not lat:
            return "-"
        return "%.0f" % lat[max(0, math.ceil(p / 100.0 * len(lat)) - 1)]

    print("n=%d\nmissing=%d\nextra=%d\ndups=%d" % (len(lat), missing, extra, dups))
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100)):
        print("%s=%s" % (name, pct(p)))


def cmd_sample(url):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    conn = None
    while True:
        now = time.time()
        events = ""
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status == 200:
                events = str(json.loads(body)["events"])
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
        print("%.3f %s" % (now, events), flush=True)
        time.sleep(max(0.0, 1.0 - (time.time() - now)))


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, args = argv[1], argv[2:]
    if cmd == "sum" and len(args) == 2:
        cmd_sum(*args)
    elif cmd == "hist" and len(args) == 3:
        cmd_hist(*args)
    elif cmd == "join" and len(args) == 2:
        cmd_join(*args)
    elif cmd == "sample" and len(args) == 1:
        cmd_sample(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
