#!/usr/bin/env python3
"""api_access — every API route, as another user: 401, 403, 404, and nothing changes.

Usage: api_access.py BASE ROUTES_FILE IDS_JSON

ROUTES_FILE holds `rastro-front --list-routes`: one "METHOD PATTERN [FLAGS]" per
line. IDS_JSON maps an id kind (the path segment before ":id": bots, pools,
pixels, offers, leads, payments, dlq, adaccounts) to {"a": id of user A, "b": id
of user B}. Users A (alpha@example.com) and B (bravo@example.com) have the
password "senha forte 123". Every object of A carries the marker "alpha".

Checked for every route:
  - no session: 401 (public routes excepted);
  - B's session, a write with no or a wrong X-CSRF-Token: 403;
  - B's session on a route with an :id, given A's id: 404, the same answer as
    for an id that does not exist; A's own id answers A's GETs with 200;
  - B's session on every GET without an id: 200 and no trace of A ("alpha");
  - B's session with ?bot= / ?pool= of A on the analytics reads: 404.
Prints one line per failure and exits 1 if any.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_client import Checks, Client  # noqa: E402

BASE, ROUTES_FILE, IDS_JSON = sys.argv[1], sys.argv[2], sys.argv[3]
IDS = json.loads(IDS_JSON)
MARK = "alpha"
checks = Checks()
fail = checks.fail


routes = []
with open(ROUTES_FILE) as f:
    for line in f:
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("/"):
            pattern = parts[1][len("/api/v1"):] if parts[1].startswith("/api/v1/") else parts[1]
            routes.append((parts[0].upper(), pattern, " ".join(parts[2:]).lower()))
if len(routes) < 10:
    raise SystemExit(f"only {len(routes)} routes listed: is --list-routes working?")

anon, a, b = Client(BASE, checks), Client(BASE, checks), Client(BASE, checks)
a.login("alpha@example.com", "senha forte 123")
b.login("bravo@example.com", "senha forte 123")

# Plausible bodies, so that a 404 cannot hide behind a 400 for a missing field.
BODIES = {
    ("PATCH", "bots"): {"enabled": False},
    ("PATCH", "pools"): {"enabled": False},
    ("PATCH", "pixels"): {"test_event_code": "TEST999"},
    ("PATCH", "offers"): {"enabled": False},
    ("POST", "offers"): {"name": "bravo offer", "price_cents": 1000, "deliver_text": "oi"},
    ("PUT", "manual"): {"pool_id": IDS["pools"]["a"], "day": "2026-11-01", "amount_cents": 500},
}


def fill(pattern, who):
    """The path with every :id replaced by WHO's id of that kind, and the kind of the first."""
    segs = pattern.strip("/").split("/")
    kind = None
    for i, s in enumerate(segs):
        if s == ":id":
            k = segs[i - 1] if i else "?"
            if k not in IDS:
                return None, k
            kind = kind or k
            segs[i] = str(IDS[k][who] if who in ("a", "b") else who)
    return "/" + "/".join(segs), kind


def body_for(method, pattern):
    if method in ("GET", "HEAD", "DELETE"):
        return None
    last = [s for s in pattern.strip("/").split("/") if s != ":id"][-1]
    return BODIES.get((method, last), {})


checked = 0
for method, pattern, flags in routes:
    public = "public" in flags
    path, kind = fill(pattern, "a")
    if path is None:
        fail(f"{method} {pattern}: unknown id kind '{kind}' (teach api_access.py)")
        continue
    body = body_for(method, pattern)
    write = method not in ("GET", "HEAD")
    if public:
        continue
    # 1. no session
    st, text = anon.call(method, path, body, csrf=None)
    if st != 401:
        fail(f"{method} {path} without a session: {st}, expected 401 ({text[:80]})")
    # 2. writes without / with a wrong CSRF token
    if write:
        for token in (None, "not-the-token"):
            st, text = b.call(method, path, body, csrf=token)
            if st != 403:
                fail(f"{method} {path} as B with csrf={token}: {st}, expected 403 ({text[:80]})")
    # 3. A's ids as B: 404, the same as a missing id
    if ":id" in pattern:
        st, text = b.call(method, path, body, csrf=b.csrf)
        missing, _ = fill(pattern, 987654321)
        st2, text2 = b.call(method, missing, body, csrf=b.csrf)
        if st != 404:
            fail(f"{method} {path} (A's {kind}) as B: {st}, expected 404 ({text[:120]})")
        if (st, text) != (st2, text2):
            fail(f"{method} {pattern}: A's id answers B differently from a missing id: "
                 f"{st} {text[:60]} vs {st2} {text2[:60]}")
        if MARK in text:
            fail(f"{method} {path} as B leaks A's data: {text[:120]}")
        if method == "GET":
            st, text = a.call(method, path)
            if st != 200:
                fail(f"{method} {path} as A (its own {kind}): {st}, expected 200 ({text[:120]})")
    elif method == "GET":
        st, text = b.call("GET", path)
        if st != 200:
            fail(f"GET {path} as B: {st}, expected 200 ({text[:120]})")
        if MARK in text:
            fail(f"GET {path} as B shows A's data: {text[:200]}")
    checked += 1

# 4. writes without an id in the path whose body names A's objects
FOREIGN_BODIES = {
    ("PUT", "/spend/manual"): BODIES[("PUT", "manual")],
    ("POST", "/pools"): {"slug": "bravo-steals", "pixel": IDS["pixels"]["a"],
                         "bots": [{"bot_id": IDS["bots"]["a"], "weight": 1}]},
}
listed = {(m, p) for m, p, _ in routes}
for (method, path), body in FOREIGN_BODIES.items():
    if (method, path) not in listed:
        fail(f"{method} {path} is not listed by --list-routes")
        continue
    st, text = b.call(method, path, body, csrf=b.csrf)
    if st != 404:
        fail(f"{method} {path} as B naming A's objects: {st}, expected 404 ({text[:120]})")

# 5. analytics filters naming A's objects
for path in ("/summary", "/funnel", "/hourly", "/leads", "/payments"):
    for key in ("bot", "pool"):
        kind = key + "s"
        st, text = b.call("GET", f"{path}?{key}={IDS[kind]['a']}")
        if st != 404:
            fail(f"GET {path}?{key}=<A's> as B: {st}, expected 404 ({text[:120]})")
        st, text = a.call("GET", f"{path}?{key}={IDS[kind]['a']}")
        if st != 200:
            fail(f"GET {path}?{key}=<A's> as A: {st}, expected 200 ({text[:120]})")
st, text = b.call("GET", f"/utm?pool={IDS['pools']['a']}")
if st != 404:
    fail(f"GET /utm?pool=<A's> as B: {st}, expected 404")

print(f"api_access: {checked} routes checked, {len(checks.failures)} failures")
sys.exit(checks.exit_code())
