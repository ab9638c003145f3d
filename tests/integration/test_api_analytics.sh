#!/usr/bin/env bash
# test_api_analytics — the analytics API (lib/rst_apiq.c) on a known data set, over HTTP.
#
# User A (two pools, three bots) and user B get hourly aggregates written
# with the aggregator's own statement shape (INSERT ... ON CONFLICT DO UPDATE
# SET x = x + EXCLUDED.x, so the rollup triggers of 008_rollups.sql see
# inserts and updates), Meta and manual spend, leads and payments. A logs in
# (POST /api/v1/login, cookie jar) and every route's answer is compared with
# numbers worked out by hand: /summary (no filter, pool, bot, bot+pool,
# organic pool 0), /funnel (rates, null after a 0 step), /hourly (+ spend per
# day, none by bot), /utm (campaign with spend incl. a campaign without
# clicks; source without spend; sorting; pool filter), /by-bot (zeros
# included), /by-pool (pool 0 first), a 366-day range and today; B's numbers
# never appear; B's bot or pool as a filter → 404; bad parameters → 400;
# /leads walked page by page with limit=3 (every lead exactly once, newest
# first, ties by id), /payments with status and pool filters, the details.
# Phase 2 (009_api_speed.sql): back-dated deltas (before a bot's first day,
# between its rows), a delete, spend changes and a lead that adopts a pool
# after paying; /by-bot over ranges worked out from the rows (and equal to
# /summary?bot= over every pair of 11 days), /daily (+ spend per day; pool,
# organic, bot, bot+pool; sums = /summary), /hourly's 31-day cap (400 naming
# /daily), /payments by pool (the lead's) with status.
# Finally the rollups (008's, 009's, spend_day) equal a rebuild.
. "$(dirname "$0")/lib.sh"
rt_setup api_analytics

PASSWORD='senha forte 123'
printf '%s\n' "$PASSWORD" | rastro user add ana@example.com >/dev/null
printf '%s\n' "$PASSWORD" | rastro user add beto@example.com >/dev/null
A=$(rt_psql "SELECT id FROM users WHERE email = 'ana@example.com'")
B=$(rt_psql "SELECT id FROM users WHERE email = 'beto@example.com'")
TODAY=$(rt_psql "SELECT (now() AT TIME ZONE 'America/Sao_Paulo')::date")

# The aggregator's statement shape (lib/rst_aggstore.c), one VALUES list per call.
agg() {
  rt_psql "
INSERT INTO analytics_hourly AS h (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign,
                                   clicks, automated_clicks, starts, checkouts, purchases, revenue_cents)
VALUES $1
ON CONFLICT (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign) DO UPDATE SET
  clicks = h.clicks + EXCLUDED.clicks,
  automated_clicks = h.automated_clicks + EXCLUDED.automated_clicks,
  starts = h.starts + EXCLUDED.starts,
  checkouts = h.checkouts + EXCLUDED.checkouts,
  purchases = h.purchases + EXCLUDED.purchases,
  revenue_cents = h.revenue_cents + EXCLUDED.revenue_cents,
  updated_at = now ()" >/dev/null
}

rt_psql "
INSERT INTO pixels (id, owner_id, pixel_id, token_enc) VALUES (1, $A, '111', '\x00'), (2, $B, '222', '\x00');
INSERT INTO bots (id, owner_id, telegram_id, username, token_enc) VALUES
  (11, $A, 9011, 'ana_bot_one', '\x00'), (12, $A, 9012, 'ana_bot_two', '\x00'),
  (13, $A, 9013, 'ana_bot_idle', '\x00'), (91, $B, 9091, 'beto_bot', '\x00');
INSERT INTO pools (id, owner_id, slug, pixel_ref) VALUES
  (21, $A, 'ana-one', 1), (22, $A, 'ana-two', 1), (92, $B, 'beto-pool', 2);
INSERT INTO pool_bots (pool_id, bot_id) VALUES (21, 11), (21, 12), (22, 12), (22, 13), (92, 91);
INSERT INTO offers (id, owner_id, bot_id, name, price_cents, deliver_text) VALUES
  (41, $A, 11, 'Curso', 9700, 'ok'), (42, $A, 12, 'Mentoria', 4700, 'ok'), (49, $B, 91, 'B', 100, 'ok');
INSERT INTO ad_accounts (id, owner_id, account_id, token_enc) VALUES (31, $A, '31', '\x00'), (39, $B, '39', '\x00');
INSERT INTO campaign_spend (ad_account_ref, owner_id, day, campaign_id, campaign_name, utm_campaign, pool_id, spend_cents) VALUES
  (31, $A, '2026-03-10', 'c1', 'camp1', 'camp1', 21, 5000),
  (31, $A, '2026-03-11', 'c1', 'camp1', 'camp1', 22, 3000),
  (31, $A, '2026-03-10', 'c2', 'camp2', 'camp2', 21, 10000),
  (31, $A, '2026-03-10', 'cx', 'campX', 'campX', 0, 700),
  (31, $A, '2026-03-12', 'c1', 'camp1', 'camp1', 21, 777),
  (39, $B, '2026-03-10', 'c1', 'camp1', 'camp1', 92, 12345);
INSERT INTO manual_spend (owner_id, pool_id, day, amount_cents) VALUES
  ($A, 22, '2026-03-11', 2000), ($B, 92, '2026-03-10', 50000);" >/dev/null

# D1 = 2026-03-10, D2 = 2026-03-11 (the main range), D3 = 2026-06-01 (the year range).
agg "($A, '2026-03-10', 9, 21, 11, 'fb', 'camp1', 10, 2, 6, 3, 2, 19400),
     ($A, '2026-03-10', 10, 21, 12, 'google', 'camp2', 8, 0, 4, 2, 1, 4700),
     ($B, '2026-03-10', 9, 92, 91, 'fb', 'camp1', 1000, 0, 500, 100, 50, 999999)"
agg "($A, '2026-03-10', 9, 21, 11, 'fb', 'camp1', 5, 0, 1, 0, 0, 0),
     ($A, '2026-03-11', 0, 22, 12, 'fb', 'camp1', 4, 0, 2, 1, 1, 9700),
     ($A, '2026-03-11', 23, 0, 11, '', '', 0, 0, 3, 0, 1, 9700)"
agg "($A, '2026-03-09', 23, 21, 11, 'fb', 'camp1', 1000, 0, 0, 0, 0, 0),
     ($A, '2026-03-12', 0, 21, 11, 'fb', 'camp1', 2000, 0, 0, 0, 0, 0),
     ($A, '2026-06-01', 12, 21, 11, 'fb', 'camp3', 100, 0, 0, 0, 0, 0),
     ($A, '$TODAY', 1, 22, 13, 'tt', 'camp9', 3, 1, 1, 0, 0, 0)"

# Leads: A's seven (two share a created_at), B's two. Payments: A's three, B's one.
rt_psql "
INSERT INTO leads (id, owner_id, bot_id, tg_user_id, chat_id, first_name, username, pool_id,
                   utm_source, utm_campaign, external_id, created_at) VALUES
  (101, $A, 11, 1, 1, 'Lia', 'lia', 21, 'fb', 'camp1', 'e1', '2026-03-10 12:00:00+00'),
  (102, $A, 12, 2, 2, 'Rui', NULL, 21, 'google', 'camp2', 'e2', '2026-03-10 13:00:00+00'),
  (103, $A, 12, 3, 3, 'Eva', 'eva', 22, 'fb', 'camp1', 'e3', '2026-03-11 09:00:00+00'),
  (104, $A, 11, 4, 4, 'Ivo', NULL, 0, NULL, NULL, 'e4', '2026-03-11 09:00:00+00'),
  (105, $A, 13, 5, 5, 'Ana', NULL, 22, 'tt', 'camp9', 'e5', '2026-03-11 10:30:00.123456+00'),
  (106, $A, 11, 6, 6, 'Léo', NULL, 21, 'fb', 'camp3', 'e6', '2026-06-01 15:00:00+00'),
  (107, $A, 12, 7, 7, 'Bia', NULL, 22, 'fb', 'camp1', 'e7', '2026-03-09 08:00:00+00'),
  (191, $B, 91, 8, 8, 'Beto', NULL, 92, 'fb', 'camp1', 'e8', '2026-03-11 09:00:00+00'),
  (192, $B, 91, 9, 9, 'Bela', NULL, 92, 'fb', 'camp1', 'e9', '2026-06-02 09:00:00+00');
INSERT INTO payments (id, owner_id, bot_id, lead_id, offer_id, gateway, idempotency_key, charge_id,
                      status, amount_cents, created_at, paid_at) VALUES
  (201, $A, 11, 101, 41, 'pushinpay', 'k1', 'ch1', 'paid', 9700, '2026-03-10 12:05:00+00', '2026-03-10 12:06:00+00'),
  (202, $A, 12, 103, 42, 'pushinpay', 'k2', 'ch2', 'pending', 4700, '2026-03-11 09:01:00+00', NULL),
  (203, $A, 11, 101, 41, 'pushinpay', 'k3', 'ch3', 'expired', 9700, '2026-03-10 11:00:00+00', NULL),
  (291, $B, 91, 191, 49, 'pushinpay', 'k9', 'ch9', 'paid', 100, '2026-03-11 09:02:00+00', '2026-03-11 09:03:00+00');" >/dev/null

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT
BASE="http://127.0.0.1:$PORT"
sed 's/^required_acks = .*/required_acks = stored/' "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/topology.ini" --instance 0
rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"

PYTHONPATH="$RASTRO_SOURCE_DIR/tests/integration" python3 - "$BASE" "$TODAY" <<'PY' || rt_fail "API answers (see the FAIL lines above)"
import json, sys
from api_client import Checks, Client

BASE, TODAY = sys.argv[1], sys.argv[2]
checks = Checks()
fail, eq, failures = checks.fail, checks.eq, checks.failures
api = Client(BASE, checks)
call, get = api.call_json, api.get

def M(clicks=0, auto=0, starts=0, checkouts=0, purchases=0, revenue=0, spend=None, roi=None):
    m = {"clicks": clicks, "automated_clicks": auto, "starts": starts, "checkouts": checkouts,
         "purchases": purchases, "revenue_cents": revenue, "spend_cents": spend,
         "profit_cents": None if spend is None else revenue - spend, "roi": roi}
    return m

api.login("ana@example.com", "senha forte 123")

R = "range=custom&from=2026-03-10&to=2026-03-11"
RANGE = {"from": "2026-03-10", "to": "2026-03-11", "timezone": "America/Sao_Paulo"}

# ---- summary ---------------------------------------------------------------
eq("summary", {"range": RANGE, "metrics": M(27, 2, 16, 6, 5, 43500, 20700, 1.1014)},
   get("/summary?" + R))
eq("summary pool 21", M(23, 2, 11, 5, 3, 24100, 15000, 0.6067),
   get("/summary?" + R + "&pool=21")["metrics"])
eq("summary bot 11", M(15, 2, 10, 3, 3, 29100), get("/summary?" + R + "&bot=11")["metrics"])
eq("summary bot 12 pool 22", M(4, 0, 2, 1, 1, 9700),
   get("/summary?" + R + "&bot=12&pool=22")["metrics"])
eq("summary organic", M(0, 0, 3, 0, 1, 9700, 700, 12.8571), get("/summary?" + R + "&pool=0")["metrics"])
eq("summary idle bot", M(), get("/summary?" + R + "&bot=13")["metrics"])
eq("summary without spend", M(0, 0, 0, 0, 0, 0, 0, None),
   get("/summary?range=custom&from=2020-01-01&to=2020-01-31")["metrics"])
eq("summary from/to alone mean custom", get("/summary?" + R)["metrics"],
   get("/summary?from=2026-03-10&to=2026-03-11")["metrics"])

# A year (366 days) with D3 and the days around D1/D2; spend: 20700 + 777.
eq("summary 366 days", {"range": {"from": "2025-06-02", "to": "2026-06-02", "timezone": "America/Sao_Paulo"},
                        "metrics": M(3127, 2, 16, 6, 5, 43500, 21477, 1.0254)},
   get("/summary?range=custom&from=2025-06-02&to=2026-06-02"))
eq("by-bot 366 days, bot 11 clicks", 3115,
   get("/by-bot?range=custom&from=2025-06-02&to=2026-06-02")["rows"][0]["clicks"])

# Today (and the relative ranges contain it).
t = get("/summary?range=today")
eq("today range", {"from": TODAY, "to": TODAY, "timezone": "America/Sao_Paulo"}, t["range"])
eq("today", M(3, 1, 1, 0, 0, 0, 0, None), t["metrics"])
eq("default range is today", t, get("/summary"))
for rng, days in (("7d", 7), ("30d", 30)):
    b = get("/summary?range=" + rng)
    eq(rng + " to", TODAY, b["range"]["to"])
    eq(rng + " clicks", 3, b["metrics"]["clicks"])
y = get("/summary?range=yesterday")
eq("yesterday is one day", y["range"]["from"], y["range"]["to"])
eq("yesterday clicks", 0, y["metrics"]["clicks"])

# ---- funnel ----------------------------------------------------------------
eq("funnel", {"range": RANGE, "steps": [
        {"step": "click", "count": 27, "rate": None},
        {"step": "start", "count": 16, "rate": 0.5926},
        {"step": "checkout", "count": 6, "rate": 0.375},
        {"step": "purchase", "count": 5, "rate": 0.8333}], "overall_rate": 0.1852},
   get("/funnel?" + R))
eq("funnel after a zero step", [None, 0.0, None, None],
   [s["rate"] for s in get("/funnel?range=custom&from=2026-06-01&to=2026-06-01")["steps"]])
eq("funnel with no clicks", None, get("/funnel?" + R + "&pool=0")["overall_rate"])

# ---- hourly ----------------------------------------------------------------
def H(day, hour, c, a, s, k, p, r):
    return {"day": day, "hour": hour, "clicks": c, "automated_clicks": a, "starts": s,
            "checkouts": k, "purchases": p, "revenue_cents": r}
eq("hourly", {"range": RANGE, "rows": [
        H("2026-03-10", 9, 15, 2, 7, 3, 2, 19400), H("2026-03-10", 10, 8, 0, 4, 2, 1, 4700),
        H("2026-03-11", 0, 4, 0, 2, 1, 1, 9700), H("2026-03-11", 23, 0, 0, 3, 0, 1, 9700)],
     "spend_by_day": [{"day": "2026-03-10", "spend_cents": 15700}, {"day": "2026-03-11", "spend_cents": 5000}]},
   get("/hourly?" + R))
eq("hourly bot 12", {"range": RANGE, "rows": [H("2026-03-10", 10, 8, 0, 4, 2, 1, 4700),
                                              H("2026-03-11", 0, 4, 0, 2, 1, 1, 9700)],
                     "spend_by_day": []}, get("/hourly?" + R + "&bot=12"))
eq("hourly pool 22", {"range": RANGE, "rows": [H("2026-03-11", 0, 4, 0, 2, 1, 1, 9700)],
                      "spend_by_day": [{"day": "2026-03-11", "spend_cents": 5000}]},
   get("/hourly?" + R + "&pool=22"))

# ---- utm -------------------------------------------------------------------
def U(key, *a, **k):
    m = M(*a, **k)
    m["key"] = key
    return m
camp = [U("camp1", 19, 2, 9, 4, 3, 29100, spend=8000, roi=2.6375),
        U("", 0, 0, 3, 0, 1, 9700, spend=0),
        U("camp2", 8, 0, 4, 2, 1, 4700, spend=10000, roi=-0.53),
        U("campX", spend=700, roi=-1.0)]
eq("utm campaign", {"range": RANGE, "group": "campaign", "rows": camp}, get("/utm?" + R))
eq("utm campaign by key asc", ["", "camp1", "camp2", "campX"],
   [r["key"] for r in get("/utm?" + R + "&sort=key&order=asc")["rows"]])
eq("utm campaign by roi asc (null last)", ["campX", "camp2", "camp1", ""],
   [r["key"] for r in get("/utm?" + R + "&sort=roi&order=asc")["rows"]])
eq("utm campaign by spend desc", ["camp2", "camp1", "campX", ""],
   [r["key"] for r in get("/utm?" + R + "&sort=spend_cents")["rows"]])
eq("utm campaign pool 21", [U("camp1", 15, 2, 7, 3, 2, 19400, spend=5000, roi=2.88),
                            U("camp2", 8, 0, 4, 2, 1, 4700, spend=10000, roi=-0.53)],
   get("/utm?" + R + "&pool=21")["rows"])
eq("utm source", {"range": RANGE, "group": "source", "rows": [
        U("fb", 19, 2, 9, 4, 3, 29100), U("", 0, 0, 3, 0, 1, 9700), U("google", 8, 0, 4, 2, 1, 4700)]},
   get("/utm?" + R + "&group=source"))
eq("utm source by clicks asc", ["", "google", "fb"],
   [r["key"] for r in get("/utm?" + R + "&group=source&sort=clicks&order=asc")["rows"]])

# ---- by bot / by pool -----------------------------------------------------
def row(idk, idv, namek, namev, m):
    m = dict(m)
    m[idk], m[namek] = idv, namev
    return m
eq("by-bot", {"range": RANGE, "rows": [
        row("bot_id", 11, "username", "ana_bot_one", M(15, 2, 10, 3, 3, 29100)),
        row("bot_id", 12, "username", "ana_bot_two", M(12, 0, 6, 3, 2, 14400)),
        row("bot_id", 13, "username", "ana_bot_idle", M())]},
   get("/by-bot?" + R))
eq("by-pool", {"range": RANGE, "rows": [
        row("pool_id", 0, "slug", "", M(0, 0, 3, 0, 1, 9700, 700, 12.8571)),
        row("pool_id", 21, "slug", "ana-one", M(23, 2, 11, 5, 3, 24100, 15000, 0.6067)),
        row("pool_id", 22, "slug", "ana-two", M(4, 0, 2, 1, 1, 9700, 5000, 0.94))]},
   get("/by-pool?" + R))

# ---- another user's ids: 404; bad parameters: 400 ---------------------------
for path in ("/summary?bot=91", "/summary?pool=92", "/funnel?bot=91", "/hourly?pool=92",
             "/utm?pool=92", "/summary?bot=999999", "/leads?bot=91", "/leads?pool=92",
             "/payments?bot=91", "/leads/191", "/leads/999999", "/payments/291", "/payments/999999"):
    b = get(path, 404)
    if not isinstance(b, dict) or not b.get("error"):
        fail("%s: no error text: %s" % (path, b))
for path in ("/summary?range=week", "/summary?range=custom", "/summary?range=custom&from=2026-03-10",
             "/summary?range=custom&from=2026-02-30&to=2026-03-01",
             "/summary?range=custom&from=2026-3-01&to=2026-03-02",
             "/summary?range=custom&from=2026-03-02&to=2026-03-01",
             "/summary?range=custom&from=2025-01-01&to=2026-01-02",
             "/summary?range=today&from=2026-03-01", "/summary?bot=abc", "/summary?bot=0",
             "/summary?pool=-1", "/summary?pool=1e3", "/utm?group=medium", "/utm?sort=ctr",
             "/utm?order=up", "/leads?limit=0", "/leads?limit=201", "/leads?limit=x",
             "/leads?cursor=zz", "/leads?cursor=3132", "/payments?status=lost",
             "/payments?cursor=" + "31" * 41):
    b = get(path, 400)
    if not isinstance(b, dict) or not b.get("error"):
        fail("%s: no error text: %s" % (path, b))
get("/summary?range=custom&from=2025-01-01&to=2026-01-01")   # exactly 366 days: fine

# B's numbers never show (B has 1000 clicks and 999999 revenue on D1).
for path in ("/summary?" + R, "/by-bot?" + R, "/by-pool?" + R, "/utm?" + R, "/utm?group=source&" + R,
             "/hourly?" + R, "/leads?limit=200", "/payments?limit=200"):
    text = json.dumps(get(path))
    for mark in ("999999", "beto", "12345", "50000", "Beto", "1000,"):
        if mark in text:
            fail("%s shows B's data (%s): %s" % (path, mark, text[:300]))

# ---- leads: every one exactly once, newest first ------------------------------
order = [106, 105, 104, 103, 102, 101, 107]     # 103/104 share created_at: higher id first
seen, cursor, pages = [], None, 0
while True:
    b = get("/leads?limit=3" + ("&cursor=" + cursor if cursor else ""))
    pages += 1
    seen += [i["id"] for i in b["items"]]
    cursor = b["next_cursor"]
    if not cursor or pages > 10:
        break
eq("leads walk", order, seen)
eq("leads pages", 3, pages)
eq("leads in one page", order, [i["id"] for i in get("/leads?limit=200")["items"]])
b = get("/leads?limit=7")
eq("leads: a full last page has no next cursor", None, b["next_cursor"])
eq("leads bot 12", [103, 102, 107], [i["id"] for i in get("/leads?bot=12")["items"]])
eq("leads pool 22", [105, 103, 107], [i["id"] for i in get("/leads?pool=22")["items"]])
eq("leads organic", [104], [i["id"] for i in get("/leads?pool=0")["items"]])
# Every filter at once (each combination is its own prepared statement).
b = get("/leads?bot=12&pool=22&limit=1")
eq("leads bot 12 pool 22, page 1", [103], [i["id"] for i in b["items"]])
eq("leads bot 12 pool 22, page 2", [107],
   [i["id"] for i in get("/leads?bot=12&pool=22&limit=1&cursor=" + b["next_cursor"])["items"]])
eq("lead item", {"id": 101, "bot_id": 11, "bot_username": "ana_bot_one", "pool_id": 21,
                 "first_name": "Lia", "username": "lia", "utm_source": "fb", "utm_campaign": "camp1",
                 "created_at": "2026-03-10T12:00:00Z", "paid": True},
   [i for i in get("/leads?limit=200")["items"] if i["id"] == 101][0])
eq("paid flags", {106: False, 105: False, 104: False, 103: False, 102: False, 101: True, 107: False},
   {i["id"]: i["paid"] for i in get("/leads")["items"]})
d = get("/leads/101")
eq("lead detail", ("Lia", 21, [201, 203]),
   (d["lead"]["first_name"], d["lead"]["pool_id"], [p["id"] for p in d["payments"]]))

# ---- payments ---------------------------------------------------------------
eq("payments", [202, 201, 203], [p["id"] for p in get("/payments")["items"]])
eq("payments paid", [201], [p["id"] for p in get("/payments?status=paid")["items"]])
eq("payments pool 22", [202], [p["id"] for p in get("/payments?pool=22")["items"]])
eq("payments bot 11", [201, 203], [p["id"] for p in get("/payments?bot=11")["items"]])
b = get("/payments?bot=11&limit=1")
eq("payments bot 11, page 2", [203],
   [p["id"] for p in get("/payments?bot=11&limit=1&cursor=" + b["next_cursor"])["items"]])
eq("payments bot 11 paid, after the first", [],
   [p["id"] for p in get("/payments?bot=11&status=paid&limit=1&cursor=" + b["next_cursor"])["items"]])
b = get("/payments?limit=2")
eq("payments page 1", [202, 201], [p["id"] for p in b["items"]])
eq("payments page 2", [203], [p["id"] for p in get("/payments?limit=2&cursor=" + b["next_cursor"])["items"]])
eq("payment item", {"id": 201, "lead_id": 101, "bot_id": 11, "bot_username": "ana_bot_one",
                    "offer_id": 41, "offer_name": "Curso", "gateway": "pushinpay", "status": "paid",
                    "amount_cents": 9700, "created_at": "2026-03-10T12:05:00Z",
                    "paid_at": "2026-03-10T12:06:00Z", "delivery_status": "none"},
   get("/payments")["items"][1])
p = get("/payments/202")["payment"]
eq("payment detail", (202, "pending", None, "Eva", 22), (p["id"], p["status"], p["paid_at"],
                                                        p["lead_first_name"], p["pool_id"]))

sys.exit(1 if failures else 0)
PY

# ---- Phase 2 (009_api_speed.sql): late and back-dated deltas, a delete, a
# lead that adopts a pool after its payment; then /by-bot (cumulative sums)
# against numbers worked out by hand and against /summary?bot= (the block
# rollups) over many ranges, /daily, the /hourly cap, /payments by pool.
#   bot 12: 06-10 extends its rows (last day was 03-11); 04-01 is back-dated
#           (rows up to 06-10 exist); bot 13: 06-05 is before its first day
#           (today); bot 11: its 03-12 row (2000 clicks) is deleted.
agg "($A, '2026-06-10', 5, 22, 12, 'fb', 'camp1', 5, 0, 1, 0, 0, 0)"
agg "($A, '2026-04-01', 3, 21, 12, 'fb', 'camp1', 7, 1, 2, 1, 1, 4700)"
agg "($A, '2026-06-05', 1, 22, 13, 'tt', 'camp9', 2, 0, 0, 0, 0, 0)"
rt_psql "DELETE FROM analytics_hourly WHERE owner_id = $A AND bot_id = 11 AND day = '2026-03-12'" >/dev/null
# Spend changes (spend_day follows): 03-12's Meta spend 777 → 800; 03-11's c1 (3000) moves from pool 22 to 21.
rt_psql "UPDATE campaign_spend SET spend_cents = 800 WHERE owner_id = $A AND day = '2026-03-12';
         UPDATE campaign_spend SET pool_id = 21 WHERE owner_id = $A AND day = '2026-03-11' AND campaign_id = 'c1'" >/dev/null
# Lead 108 is organic when it pays (204), then adopts pool 22 (rst_funnel's lead upsert).
rt_psql "
INSERT INTO leads (id, owner_id, bot_id, tg_user_id, chat_id, first_name, pool_id, external_id, created_at)
  VALUES (108, $A, 11, 10, 10, 'Gil', 0, 'tg:10', '2026-03-12 09:00:00+00');
INSERT INTO payments (id, owner_id, bot_id, lead_id, offer_id, gateway, idempotency_key, charge_id,
                      status, amount_cents, created_at, paid_at)
  VALUES (204, $A, 11, 108, 41, 'pushinpay', 'k4', 'ch4', 'paid', 9700, '2026-03-12 10:00:00+00', '2026-03-12 10:01:00+00');" >/dev/null
rt_assert_eq "0" "$(rt_psql "SELECT pool_id FROM payments WHERE id = 204")" "an organic lead's payment: pool 0"
rt_psql "UPDATE leads SET pool_id = 22 WHERE id = 108" >/dev/null
rt_assert_eq "0" "$(rt_psql "SELECT count (*) FROM payments p JOIN leads l ON l.id = p.lead_id WHERE p.pool_id <> l.pool_id")" \
  "every payment's pool_id is its lead's"

PYTHONPATH="$RASTRO_SOURCE_DIR/tests/integration" python3 - "$BASE" "$TODAY" <<'PY' || rt_fail "API answers, phase 2 (see the FAIL lines above)"
import datetime, json, sys
from api_client import Checks, Client

BASE, TODAY = sys.argv[1], sys.argv[2]
checks = Checks()
fail, eq, failures = checks.fail, checks.eq, checks.failures
api = Client(BASE, checks)
call, get = api.call_json, api.get

KEYS = ("clicks", "automated_clicks", "starts", "checkouts", "purchases", "revenue_cents")
def C(clicks=0, auto=0, starts=0, checkouts=0, purchases=0, revenue=0):
    return dict(zip(KEYS, (clicks, auto, starts, checkouts, purchases, revenue)))
def counts(row):
    return {k: row[k] for k in KEYS}

api.login("ana@example.com", "senha forte 123")

def custom(a, b):
    return "range=custom&from=%s&to=%s" % (a, b)

# ---- /by-bot over ranges whose answer is known ------------------------------
def by_bot(rng):
    return {r["bot_id"]: counts(r) for r in get("/by-bot?" + rng)["rows"]}
eq("by-bot 03-12..06-09 (a deleted day, a back-dated delta)",
   {11: C(100), 12: C(7, 1, 2, 1, 1, 4700), 13: C(2)}, by_bot(custom("2026-03-12", "2026-06-09")))
eq("by-bot 04-01..06-10", {11: C(100), 12: C(12, 1, 3, 1, 1, 4700), 13: C(2)},
   by_bot(custom("2026-04-01", "2026-06-10")))
eq("by-bot 04-02..06-04 (between the rows)", {11: C(100), 12: C(), 13: C()},
   by_bot(custom("2026-04-02", "2026-06-04")))
eq("by-bot 06-02..06-04 (no activity)", {11: C(), 12: C(), 13: C()},
   by_bot(custom("2026-06-02", "2026-06-04")))
eq("by-bot 2026-03-09 (a bot's first day)", {11: C(1000), 12: C(), 13: C()},
   by_bot(custom("2026-03-09", "2026-03-09")))
# Every hourly row of A now: (bot, day, counts), to work out any range.
ROWS = [(11, "2026-03-09", C(1000)), (11, "2026-03-10", C(15, 2, 7, 3, 2, 19400)),
        (11, "2026-03-11", C(0, 0, 3, 0, 1, 9700)), (11, "2026-06-01", C(100)),
        (12, "2026-03-10", C(8, 0, 4, 2, 1, 4700)), (12, "2026-03-11", C(4, 0, 2, 1, 1, 9700)),
        (12, "2026-04-01", C(7, 1, 2, 1, 1, 4700)), (12, "2026-06-10", C(5, 0, 1)),
        (13, "2026-06-05", C(2)), (13, TODAY, C(3, 1, 1))]
def expected(a, b):
    out = {11: C(), 12: C(), 13: C()}
    for bot, day, m in ROWS:
        if a <= day <= b:
            out[bot] = {k: out[bot][k] + m[k] for k in KEYS}
    return out
t = datetime.date.fromisoformat(TODAY)
y_from = (t - datetime.timedelta(days=365)).isoformat()
year = custom(y_from, TODAY)
eq("by-bot 366 days up to today", expected(y_from, TODAY), by_bot(year))
# The same as /summary?bot= (the block rollups of 008) over many ranges.
days = ["2026-03-08", "2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12", "2026-03-31",
        "2026-04-01", "2026-06-01", "2026-06-05", "2026-06-10", TODAY]
for i, a in enumerate(days):
    for b in days[i:]:
        if (datetime.date.fromisoformat(b) - datetime.date.fromisoformat(a)).days > 365:
            continue
        rows = by_bot(custom(a, b))
        eq("by-bot %s..%s" % (a, b), expected(a, b), rows)
        for bot in (11, 12, 13):
            eq("by-bot %s..%s bot %d = summary" % (a, b, bot),
               counts(get("/summary?%s&bot=%d" % (custom(a, b), bot))["metrics"]), rows.get(bot))

# ---- /daily -----------------------------------------------------------------
def D(day, spend, *a):
    r = C(*a)
    r["day"], r["spend_cents"] = day, spend
    return r
R2 = custom("2026-03-09", "2026-06-10")
RANGE2 = {"from": "2026-03-09", "to": "2026-06-10", "timezone": "America/Sao_Paulo"}
eq("daily", {"range": RANGE2, "rows": [
        D("2026-03-09", 0, 1000), D("2026-03-10", 15700, 23, 2, 11, 5, 3, 24100),
        D("2026-03-11", 5000, 4, 0, 5, 1, 2, 19400), D("2026-03-12", 800),
        D("2026-04-01", 0, 7, 1, 2, 1, 1, 4700), D("2026-06-01", 0, 100),
        D("2026-06-05", 0, 2), D("2026-06-10", 0, 5, 0, 1)]},
   get("/daily?" + R2))
eq("daily pool 21", [D("2026-03-09", 0, 1000), D("2026-03-10", 15000, 23, 2, 11, 5, 3, 24100),
                     D("2026-03-11", 3000), D("2026-03-12", 800), D("2026-04-01", 0, 7, 1, 2, 1, 1, 4700),
                     D("2026-06-01", 0, 100)], get("/daily?" + R2 + "&pool=21")["rows"])
eq("daily pool 22", [D("2026-03-11", 2000, 4, 0, 2, 1, 1, 9700), D("2026-06-05", 0, 2),
                     D("2026-06-10", 0, 5, 0, 1)], get("/daily?" + R2 + "&pool=22")["rows"])
eq("daily organic", [D("2026-03-10", 700), D("2026-03-11", 0, 0, 0, 3, 0, 1, 9700)],
   get("/daily?" + R2 + "&pool=0")["rows"])
eq("daily bot 12", [D("2026-03-10", None, 8, 0, 4, 2, 1, 4700), D("2026-03-11", None, 4, 0, 2, 1, 1, 9700),
                    D("2026-04-01", None, 7, 1, 2, 1, 1, 4700), D("2026-06-10", None, 5, 0, 1)],
   get("/daily?" + R2 + "&bot=12")["rows"])
eq("daily bot 12 pool 22", [D("2026-03-11", None, 4, 0, 2, 1, 1, 9700), D("2026-06-10", None, 5, 0, 1)],
   get("/daily?" + R2 + "&bot=12&pool=22")["rows"])
eq("daily bot 11 from its second day", [D("2026-03-10", None, 15, 2, 7, 3, 2, 19400),
                                        D("2026-03-11", None, 0, 0, 3, 0, 1, 9700)],
   get("/daily?" + custom("2026-03-10", "2026-03-12") + "&bot=11")["rows"])
eq("daily bot 13 up to today", [D(day, None, *m.values()) for bot, day, m in ROWS if bot == 13 and day >= y_from],
   get("/daily?" + year + "&bot=13")["rows"])
# A year of days adds up to the year's summary.
y, s = get("/daily?" + year), get("/summary?" + year)["metrics"]
eq("daily sums = summary", counts(s), {k: sum(r[k] for r in y["rows"]) for k in KEYS})
eq("daily spend = summary spend", s["spend_cents"], sum(r["spend_cents"] for r in y["rows"]))
for path in ("/daily?bot=91", "/daily?pool=92"):
    get(path, 404)
for path in ("/daily?range=custom&from=2025-01-01&to=2026-01-02", "/daily?bot=x"):
    get(path, 400)

# ---- /hourly: at most 31 days ----------------------------------------------------
get("/hourly?" + custom("2026-03-01", "2026-03-31"))
b = get("/hourly?" + custom("2026-03-01", "2026-04-01"), 400)
if "/daily" not in (b or {}).get("error", ""):
    fail("the /hourly cap's error does not name /daily: %s" % b)
get("/hourly?range=30d")

# ---- /payments by pool (the lead's, kept on the payment) and status -----------
def ids(path):
    return [p["id"] for p in get(path)["items"]]
eq("payments pool 22 paid (lead adopted the pool after paying)", [204], ids("/payments?pool=22&status=paid"))
eq("payments pool 22", [204, 202], ids("/payments?pool=22"))
eq("payments pool 22 pending", [202], ids("/payments?pool=22&status=pending"))
eq("payments pool 21 paid", [201], ids("/payments?pool=21&status=paid"))
eq("payments pool 21 expired", [203], ids("/payments?pool=21&status=expired"))
eq("payments organic", [], ids("/payments?pool=0"))
eq("payments pool 21 paid, bot 11", [201], ids("/payments?pool=21&status=paid&bot=11"))
b = get("/payments?pool=22&limit=1")
eq("payments pool 22 page 1", [204], [p["id"] for p in b["items"]])
eq("payments pool 22 page 2", [202], ids("/payments?pool=22&limit=1&cursor=" + b["next_cursor"]))

sys.exit(1 if failures else 0)
PY

# The rollups the triggers kept (008's and 009's) equal a rebuild from
# analytics_hourly (rows of all zeros left out: a delete leaves them).
snap() {
  rt_psql "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM (
             SELECT 'p', owner_id, lvl, start, pool_id, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_roll_pool
             UNION ALL SELECT 'b', owner_id, lvl, start, bot_id * 1000 + pool_id, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_roll_bot
             UNION ALL SELECT 'u' || utm_source || '/' || utm_campaign, owner_id, lvl, start, pool_id, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_roll_utm
             UNION ALL SELECT 'h', owner_id, hour, day - DATE '1970-01-01', 0, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_hour_owner
             UNION ALL SELECT 'hp', owner_id, hour, day - DATE '1970-01-01', pool_id, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_hour_pool
             UNION ALL SELECT 'hb', owner_id, hour, day - DATE '1970-01-01', bot_id * 1000 + pool_id, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_hour_bot
             UNION ALL SELECT 'cb', owner_id, 0, day - DATE '1970-01-01', bot_id, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_cum_bot
             UNION ALL SELECT 'cl' || (first_day - DATE '1970-01-01'), owner_id, 0, day - DATE '1970-01-01', bot_id, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_cum_bot_last
             UNION ALL SELECT 'do', owner_id, 0, day - DATE '1970-01-01', 0, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents FROM analytics_day_owner) x
           WHERE (clicks, automated_clicks, starts, checkouts, purchases, revenue_cents) <> (0, 0, 0, 0, 0, 0)"
}
KEPT=$(snap)
rt_psql "SELECT rastro_rollups_rebuild ()" >/dev/null
rt_assert_eq "$KEPT" "$(snap)" "rollups kept by the triggers vs. rebuilt"
# The same for spend_day (009) against spend_daily.
spend_snap() {
  rt_psql "SELECT string_agg (owner_id || '/' || pool_id || '/' || day || '=' || amount_cents, ','
                              ORDER BY owner_id, pool_id, day) FROM spend_day WHERE amount_cents <> 0"
}
KEPT=$(spend_snap)
rt_psql "SELECT rastro_spend_day_rebuild ()" >/dev/null
rt_assert_eq "$KEPT" "$(spend_snap)" "spend_day kept by the triggers vs. rebuilt"
echo "test_api_analytics: ok"
