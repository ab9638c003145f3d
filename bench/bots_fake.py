#!/usr/bin/env python3
"""bots_fake — drives tests/fakes/fake_telegram.py for bench/bots.sh.

Usage: bench/bots_fake.py URL COMMAND ...

  register FIRST N TOKENS_FILE
        registers N bots (Telegram ids FIRST..FIRST+N-1, usernames
        bench0000_bot...) over 4 keep-alive connections; writes their tokens,
        one a line, to TOKENS_FILE.
  waiting FIRST N
        exit 0 when every one of the N bots has a long poll waiting at the
        fake; prints how many have none.
  inject FIRST N --rate R --duration S --user0 U --log OUT
        open loop: every 1/R s (scheduled from the start, not from the last
        answer) one /start from a new user (U, U+1, ...) to the next bot in a
        stride over the N bots, through POST /_fake/updates on one keep-alive
        connection. OUT gets one JSON line per injection: bot (Telegram id),
        chat, update_id, mono (time.monotonic() just before the POST),
        wall (time.time() then). Prints how late the injector itself ran.
  latency LOG [--wait S] [--db CONNINFO]
        matches each injection in LOG with the first sendMessage of that bot
        to that chat in GET /_fake/sent (waiting up to S s for the last ones)
        and prints KEY=VALUE lines: n, missing, dup (chats with more than one
        message), p50/p90/p99/max latency in ms (sent "mono" - inject
        "mono"; both are CLOCK_MONOTONIC of this machine) and span_s (the
        first injection -> the last of these welcomes). With --db, also
        splits each latency at tg_updates.received_at (the poller's INSERT):
        poll_p50/p99 = inject -> stored, handle_p50/p99 = stored -> sent (wall
        clocks; psql is run with CONNINFO).
"""

import http.client
import json
import math
import secrets
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse


class Fake:
    def __init__(self, url):
        u = urlparse(url)
        self.host, self.port = u.hostname, u.port

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    @staticmethod
    def call(c, method, path, body=None):
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:200]))
        return json.loads(data)


def parallel(fake, fn, items, nconn=4):
    chunks = [items[k::nconn] for k in range(nconn)]
    errors = []

    def run(chunk):
        try:
            c = fake.conn()
            for item in chunk:
                fn(c, item)
        except Exception as e:      # reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=run, args=(ch,)) for ch in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("bots_fake: " + errors[0])


def start_update(user):
    return {"message": {"message_id": 1, "date": int(time.time()),
                        "from": {"id": user, "is_bot": False, "first_name": "Lead",
                                 "language_code": "pt-br"},
                        "chat": {"id": user, "type": "private", "first_name": "Lead"},
                        "text": "/start",
                        "entities": [{"offset": 0, "length": 6, "type": "bot_command"}]}}


def pct(vals, p):
    if not vals:
        return float("nan")
    return vals[max(0, math.ceil(p / 100.0 * len(vals)) - 1)]


def opt(args, name, default=None, conv=str):
    if name in args:
        return conv(args[args.index(name) + 1])
    if default is None:
        sys.exit("bots_fake: %s is needed" % name)
    return default


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) > 1 else 2
    fake, cmd, args = Fake(argv[1]), argv[2], argv[3:]
    if cmd == "register":
        first, n, path = int(args[0]), int(args[1]), args[2]
        tokens = ["%d:AAB-%s" % (first + i, secrets.token_urlsafe(26)) for i in range(n)]
        parallel(fake, lambda c, i: Fake.call(c, "POST", "/_fake/bots", {
            "token": tokens[i], "id": first + i, "username": "bench%04d_bot" % i}), list(range(n)))
        with open(path, "w") as f:
            f.write("".join(t + "\n" for t in tokens))
        return 0
    if cmd == "waiting":
        first, n = int(args[0]), int(args[1])
        q = Fake.call(fake.conn(), "GET", "/_fake/updates")
        idle = sum(1 for i in range(n) if q.get(str(first + i), {}).get("waiting", 0) < 1)
        print("%d of %d bots without a waiting long poll" % (idle, n))
        return 1 if idle else 0
    if cmd == "inject":
        first, n = int(args[0]), int(args[1])
        rate, duration = opt(args, "--rate", conv=float), opt(args, "--duration", conv=float)
        user0, out = opt(args, "--user0", conv=int), open(opt(args, "--log"), "w")
        c = fake.conn()
        total = int(rate * duration)
        stride = 7919 % n or 1      # a prime: consecutive injections go to far-apart bots
        late = []
        t0 = time.monotonic() + 0.1
        for k in range(total):
            due = t0 + k / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            bot, user = first + (k * stride) % n, user0 + k
            mono, wall = time.monotonic(), time.time()
            late.append(mono - due)
            r = Fake.call(c, "POST", "/_fake/updates", {"bot_id": bot, "update": start_update(user)})
            out.write(json.dumps({"bot": bot, "chat": user, "update_id": r["update_ids"][0],
                                  "mono": mono, "wall": wall}) + "\n")
        out.close()
        late.sort()
        print("injected %d /start at %.0f/s over %.0f s; injector late p99 %.1f ms, max %.1f ms"
              % (total, rate, duration, pct(late, 99) * 1e3, late[-1] * 1e3 if late else 0))
        return 0
    if cmd == "latency":
        log = [json.loads(line) for line in open(args[0])]
        wait, db = opt(args, "--wait", 30, float), opt(args, "--db", "")
        want = {(e["bot"], e["chat"]): e for e in log}
        deadline = time.monotonic() + wait
        while True:
            got = {}
            for s in Fake.call(fake.conn(), "GET", "/_fake/sent"):
                key = (s.get("bot_id"), int(s.get("chat_id") or 0))
                if s.get("method") == "sendMessage" and key in want:
                    got.setdefault(key, []).append(s)
            if len(got) == len(want) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lat = sorted((v[0]["mono"] - want[k]["mono"]) * 1e3 for k, v in got.items())
        print("n=%d" % len(want))
        print("missing=%d" % (len(want) - len(got)))
        print("dup=%d" % sum(1 for v in got.values() if len(v) > 1))
        for p in (50, 90, 99):
            print("p%d=%.1f" % (p, pct(lat, p)))
        print("max=%.1f" % (lat[-1] if lat else float("nan")))
        if got:     # first injection -> last welcome
            first = min(e["mono"] for e in log)
            print("span_s=%.2f" % (max(v[0]["mono"] for v in got.values()) - first))
        if db:
            rows = subprocess.run(
                ["psql", db, "-qAtX", "-F", " ", "-c",
                 "SELECT b.telegram_id, u.update_id, extract(epoch FROM u.received_at) "
                 "FROM tg_updates u JOIN bots b ON b.id = u.bot_id"],
                check=True, capture_output=True, text=True).stdout.split("\n")
            stored = {}
            for r in rows:
                if r.strip():
                    tid, uid, at = r.split()
                    stored[(int(tid), int(uid))] = float(at)
            poll, handle = [], []
            for k, e in want.items():
                at = stored.get((e["bot"], e["update_id"]))
                if at is None or k not in got:
                    continue
                poll.append((at - e["wall"]) * 1e3)
                handle.append((got[k][0]["wall"] - at) * 1e3)
            poll.sort()
            handle.sort()
            for p in (50, 99):
                print("poll_p%d=%.1f" % (p, pct(poll, p)))
                print("handle_p%d=%.1f" % (p, pct(handle, p)))
        return 0
    sys.exit("bots_fake: unknown command %s (try --help)" % cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
