#!/usr/bin/env python3
"""fake_meta — a local stand-in for Meta's Conversions API, for tests.

Speaks the wire format of reference/meta-capi.md and validates every
request the way Meta would, so that a sender that passes here sends what
Meta accepts:

    POST /{version}/{pixel_id}/events
        JSON body {"data":[...],"test_event_code":..,"partner_agent":..}
        or the SDKs' form (data=<JSON text>&access_token=..&test_event_code=..);
        access_token in the query string or the body.
    -> 200 {"events_received":N,"messages":[],"fbtrace_id":"..."}
    -> 400 {"error":{"message","type","code","error_subcode","is_transient",
                     "error_user_title","error_user_msg","fbtrace_id"}}

Checks (one bad event rejects the whole request, code 100):
    1 to 1000 events; event_name; event_time in seconds, not older than 7
    days (2804003, as Meta) and not in the future; action_source one of
    Meta's values; website: event_source_url and client_user_agent;
    user_data an object; hashed keys (em ph fn ln ge db ct st zp country)
    strings or arrays of 64 lowercase hex digits; external_id strings;
    client_ip_address an IP address and never a hash; client_user_agent
    never a hash; fbc `fb.<digit>.<ms>.<fbclid>[.<appendix>]`; fbp
    `fb.<digit>.<ms>.<random>`; Purchase: custom_data.value a number and
    currency three letters. Subcodes other than 2804003 are this fake's own
    (Meta documents the 2804xxx family, not each member):
        2804001 missing field   2804002 invalid value   2804003 too old
        2804004 future time     2804005 not a hash / a hashed IP or UA
        2804006 bad fbc/fbp     2804007 too many events / empty data
    Tokens: a request without one gets 190 (subcode 0); a token the fake
    does not know gets 190/463 (expired); a known token used on a pixel it
    is not registered for gets 100/33.

Control API (tests only, never sent by rastro):

    GET  /_fake/health    -> {"ok":true}
    GET  /_fake/events    -> [{"pixel","event_id","event_name","event",
                               "test_event_code","received"}, ...] every
                             accepted event (duplicates included; ?pixel=ID filters)
    GET  /_fake/stats     -> {"requests","accepted_requests","rejected_requests",
                              "events","duplicates","per_pixel":{pixel:{...}}}
    GET  /_fake/requests  -> [{"pixel","status","code","subcode","events",
                               "fault","time"}, ...] every /events request (no tokens)
    POST /_fake/config    JSON, every key optional:
        {"tokens": {"<pixel>": "<token>", ...},     register (or replace) tokens
         "forget_tokens": ["<pixel>", ...],
         "faults": [FAULT, ...],                    appended
         "clear_faults": true,
         "reset": true}                             forget events, requests, stats
      FAULT = {"kind": K, "pixel": "<id>" (absent = every pixel),
               "count": N (next N requests; default 1) | "seconds": S (for S s),
               ...}; K is one of
        "status"     HTTP "status" (default 503) with a Graph error code 2
                     (or "code"/"subcode" given; "body" replaces the body)
        "timeout"    sleeps "sleep" seconds (default 5), then closes without
                     an answer; "accept": true records the events first
                     (Meta got them, the client never heard)
        "throttle"   "code" (default 17; subcode 2446079 for 17), HTTP 400,
                     with X-Business-Use-Case-Usage estimated_time_to_regain_access
                     = "wait_minutes" (when given) and Retry-After = "retry_after"
        "token"      190/463 whatever the token
        "reject"     100/2804002 for requests holding event "event_id" (all
                     requests when absent): the one-bad-event case on demand
        "slow"       sleeps "sleep" seconds (default 1), then answers normally
        "reset"      resets the TCP connection without an answer
        "malformed"  HTTP 200 with a non-JSON body ("body" to choose it)

Marketing API Insights (spend per campaign and day, reference §8):

    GET /{version}/act_<account>/insights?level=campaign
        &fields=campaign_id,campaign_name,spend,account_currency
        &time_range={"since":"YYYY-MM-DD","until":"YYYY-MM-DD"}&time_increment=1[&limit=N]
        token: Authorization: Bearer <token> (or OAuth <token>), or access_token=
    -> 200 {"data":[{campaign_id, campaign_name, spend ("12.34"), account_currency,
                     date_start, date_stop}, ...],
            "paging":{"cursors":{"before","after"},"next":"http://<host>/...&after=<cursor>"}}
       (next only when more rows follow; an absolute URL to this fake, with
       access_token only when the request carried it in the query, like Meta)
       and the usage headers X-Business-Use-Case-Usage, X-App-Usage,
       X-Ad-Account-Usage and X-FB-Ads-Insights-Throttle at the account's usage_pct.
    Errors: unknown account 100/33; no token 190; another token 190/463; a bad
    level, time_increment, fields or time_range 100.

    POST /_fake/insights  JSON, every key optional:
        {"account": "<id>",                 the account the keys below are for
         "token": "<token>",                the token it accepts
         "rows": [{"day" | "date_start", "campaign_id", "campaign_name",
                   "spend" (string as Meta writes it), "account_currency"}, ...],
                                            replace its rows (sorted by day, campaign)
         "page_size": N,                    rows per page (default 25; limit= lowers it)
         "usage_pct": P, "regain_minutes": M,   usage headers of every reply
         "faults": [IFAULT, ...],           appended (for "account", else every account)
         "clear_faults": true, "reset_calls": true, "reset": true (forget accounts too)}
      IFAULT = {"kind": K, "count": N (default 1) | "seconds": S}; K is one of
        "token"      400 190/463
        "throttle"   400 with "code" (default 17, subcode 2446079; 80004 = BUC) and
                     every usage header at 100, estimated_time_to_regain_access =
                     "wait_minutes" (default 1)
        "status"     HTTP "status" (default 500), Graph error code 2, is_transient
        "malformed"  HTTP 200 with "body" (default "<html>OK</html>")
        "bad_row"    HTTP 200 with a row whose spend is not an amount
        "foreign_next"  a next link to another host (http://attacker.invalid/...)
    GET /_fake/insights/calls[?account=ID] -> [{"account","since","until","after",
                     "auth" ("header"|"query"|null),"token_ok","status","code",
                     "fault","time"}, ...] every Insights request (never a token)

The access log never shows a token (access_token=*** in paths).
"""

import argparse
import ipaddress
import json
import random
import re
import socket
import string
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_EVENTS = 1000
MAX_AGE_S = 7 * 24 * 3600
FUTURE_TOLERANCE_S = 1
ACTION_SOURCES = {"website", "app", "email", "phone_call", "chat", "physical_store",
                  "system_generated", "business_messaging", "other"}
HASHED_KEYS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX64_ANY = re.compile(r"^[0-9a-fA-F]{64}$")
FBC = re.compile(r"^fb\.[0-9]\.[0-9]{10,16}\.[^.\s]+(\.[^.\s]+)?$")
FBP = re.compile(r"^fb\.[0-9]\.[0-9]{10,16}\.[0-9]+(\.[^.\s]+)?$")
PATH = re.compile(r"^/(v[0-9]+\.[0-9]+)/([0-9]{1,32})/events/?$")
INSIGHTS_PATH = re.compile(r"^/(v[0-9]+\.[0-9]+)/act_([0-9]{1,32})/insights/?$")
INSIGHTS_FAULTS = {"token", "throttle", "status", "malformed", "bad_row", "foreign_next"}
DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
TOKEN_IN_QUERY = re.compile(r"(access_token=)[^&\s]*")
FAULT_KINDS = {"status", "timeout", "throttle", "token", "reject", "slow", "reset", "malformed"}


def trace_id():
    return "F" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(10))


class GraphError(Exception):
    """A Graph API error reply."""

    def __init__(self, code, subcode, message, title="", user_msg="", status=400,
                 transient=False):
        super().__init__(message)
        self.code, self.subcode, self.message = code, subcode, message
        self.title, self.user_msg, self.status, self.transient = title, user_msg, status, transient

    def body(self):
        err = {"message": self.message, "type": "OAuthException", "code": self.code,
               "fbtrace_id": trace_id()}
        if self.subcode:
            err["error_subcode"] = self.subcode
        err["is_transient"] = self.transient
        if self.title:
            err["error_user_title"] = self.title
        if self.user_msg:
            err["error_user_msg"] = self.user_msg
        return {"error": err}


def invalid(subcode, title, msg):
    return GraphError(100, subcode, "Invalid parameter", title, msg)


class State:
    """Everything the fake knows; shared by the handler threads under a lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = {}        # pixel -> token
        self.faults = []        # dicts, see the module doc
        self.accounts = {}      # ad account -> {"token","rows","page_size","usage_pct",...}
        self.ifaults = []       # Insights faults (dicts with "account" or not)
        self.icalls = []        # every Insights request
        self.reset()

    def reset(self):
        self.events = []
        self.requests = []
        self.seen = {}          # event_id -> copies accepted
        self.stats = {"requests": 0, "accepted_requests": 0, "rejected_requests": 0,
                      "events": 0, "duplicates": 0, "per_pixel": {}}

    def take_fault(self, pixel, event_ids):
        """Returns the fault that applies to this request (consuming one use), or None."""
        now = time.time()
        with self.lock:
            self.faults = [f for f in self.faults
                           if f.get("_left", 1) > 0 and f.get("_until", now + 1) > now]
            for f in self.faults:
                if f.get("pixel") not in (None, pixel):
                    continue
                if f["kind"] == "reject" and f.get("event_id") \
                        and f["event_id"] not in event_ids:
                    continue
                if "_left" in f:
                    f["_left"] -= 1
                return dict(f)
        return None

    def take_ifault(self, account):
        """Returns the Insights fault that applies to ACCOUNT's request (one use), or None."""
        now = time.time()
        with self.lock:
            self.ifaults = [f for f in self.ifaults
                            if f.get("_left", 1) > 0 and f.get("_until", now + 1) > now]
            for f in self.ifaults:
                if f.get("account") not in (None, account):
                    continue
                if "_left" in f:
                    f["_left"] -= 1
                return dict(f)
        return None

    def add_ifault(self, f, account):
        if f.get("kind") not in INSIGHTS_FAULTS:
            raise ValueError("unknown Insights fault kind %r" % f.get("kind"))
        f = dict(f)
        if account is not None and "account" not in f:
            f["account"] = account
        if f.get("account") is not None:
            f["account"] = str(f["account"])
        if "seconds" in f:
            f["_until"] = time.time() + float(f["seconds"])
        else:
            f["_left"] = int(f.get("count", 1))
        with self.lock:
            self.ifaults.append(f)

    def add_fault(self, f):
        if f.get("kind") not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r" % f.get("kind"))
        f = dict(f)
        if "pixel" in f and f["pixel"] is not None:
            f["pixel"] = str(f["pixel"])
        if "seconds" in f:
            f["_until"] = time.time() + float(f["seconds"])
        else:
            f["_left"] = int(f.get("count", 1))
        with self.lock:
            self.faults.append(f)


def hashed_values(key, value):
    """Checks a hashed user_data key's value: a hash or an array of hashes."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise invalid(2804002, "Invalid user_data", "%s is an empty array" % key)
    for v in values:
        if not isinstance(v, str) or not HEX64.match(v):
            raise invalid(2804005, "Unhashed or malformed user data",
                          "%s must be SHA-256 lowercase hex, got %r" % (key, str(v)[:80]))


def validate_event(i, ev, now):
    where = "data[%d]" % i
    if not isinstance(ev, dict):
        raise invalid(2804002, "Invalid event", "%s is not an object" % where)
    name = ev.get("event_name")
    if not isinstance(name, str) or not name:
        raise invalid(2804001, "Missing event_name", "%s has no event_name" % where)
    t = ev.get("event_time")
    if isinstance(t, bool) or not isinstance(t, int):
        raise invalid(2804002, "Invalid event_time",
                      "%s: event_time must be an integer (Unix seconds)" % where)
    if t > 10 ** 11:
        raise invalid(2804002, "Invalid event_time",
                      "%s: event_time looks like milliseconds; send seconds" % where)
    if t < now - MAX_AGE_S:
        raise invalid(2804003, "Event Timestamp Too Old",
                      "%s: event_time must be within 7 days of the current time" % where)
    if t > now + FUTURE_TOLERANCE_S:
        raise invalid(2804004, "Event Timestamp In The Future",
                      "%s: event_time is in the future" % where)
    source = ev.get("action_source")
    if source not in ACTION_SOURCES:
        raise invalid(2804001, "Invalid action_source",
                      "%s: action_source is required, one of %s" % (where, sorted(ACTION_SOURCES)))
    if "event_id" in ev and (not isinstance(ev["event_id"], str) or not ev["event_id"]):
        raise invalid(2804002, "Invalid event_id", "%s: event_id must be a string" % where)
    ud = ev.get("user_data")
    if not isinstance(ud, dict):
        raise invalid(2804001, "Missing user_data", "%s has no user_data object" % where)
    if source == "website":
        url = ev.get("event_source_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid(2804001, "Missing event_source_url",
                          "%s: website events need event_source_url" % where)
        if not isinstance(ud.get("client_user_agent"), str) or not ud["client_user_agent"]:
            raise invalid(2804001, "Missing client_user_agent",
                          "%s: website events need user_data.client_user_agent" % where)
    for key in HASHED_KEYS:
        if key in ud:
            hashed_values(key, ud[key])
    if "external_id" in ud:
        values = ud["external_id"] if isinstance(ud["external_id"], list) else [ud["external_id"]]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise invalid(2804002, "Invalid external_id", "%s: external_id" % where)
    ip = ud.get("client_ip_address")
    if ip is not None:
        if not isinstance(ip, str) or HEX64_ANY.match(ip):
            raise invalid(2804005, "Hashed client_ip_address",
                          "%s: client_ip_address must not be hashed" % where)
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise invalid(2804002, "Invalid client_ip_address", "%s: %r" % (where, ip[:60]))
    ua = ud.get("client_user_agent")
    if ua is not None and (not isinstance(ua, str) or HEX64_ANY.match(ua)):
        raise invalid(2804005, "Hashed client_user_agent",
                      "%s: client_user_agent must not be hashed" % where)
    fbc = ud.get("fbc")
    if fbc is not None and (not isinstance(fbc, str) or not FBC.match(fbc)):
        raise invalid(2804006, "Invalid fbc",
                      "%s: fbc must be fb.<subdomainIndex>.<creationTime ms>.<fbclid>" % where)
    fbp = ud.get("fbp")
    if fbp is not None and (not isinstance(fbp, str) or not FBP.match(fbp)):
        raise invalid(2804006, "Invalid fbp", "%s: fbp format" % where)
    if name == "Purchase":
        cd = ev.get("custom_data")
        if not isinstance(cd, dict):
            raise invalid(2804001, "Missing custom_data", "%s: Purchase needs custom_data" % where)
        v = cd.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise invalid(2804001, "Missing value", "%s: Purchase needs a numeric value" % where)
        cur = cd.get("currency")
        if not isinstance(cur, str) or not re.match(r"^[A-Za-z]{3}$", cur):
            raise invalid(2804001, "Missing currency", "%s: Purchase needs currency" % where)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the second
    # waits for the client's delayed ACK (~40 ms per keep-alive reply).
    disable_nagle_algorithm = True
    server_version = "fake_meta/1"

    def log_message(self, fmt, *args):
        if self.server.quiet:
            return
        line = TOKEN_IN_QUERY.sub(r"\1***", fmt % args)
        sys.stderr.write("fake_meta: %s\n" % line)

    # -- plumbing ---------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, obj=None, raw=None, headers=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "text/html")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def drop_connection(self, rst):
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    # -- control API -------------------------------------------------------
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        st = self.server.state
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/_fake/health":
            return self.reply(200, {"ok": True})
        if url.path == "/_fake/events":
            with st.lock:
                evs = list(st.events)
            if "pixel" in q:
                evs = [e for e in evs if e["pixel"] == q["pixel"][0]]
            return self.reply(200, evs)
        if url.path == "/_fake/stats":
            with st.lock:
                return self.reply(200, st.stats)
        if url.path == "/_fake/requests":
            with st.lock:
                return self.reply(200, list(st.requests))
        if url.path == "/_fake/insights/calls":
            with st.lock:
                calls = list(st.icalls)
            if "account" in q:
                calls = [c for c in calls if c["account"] == q["account"][0]]
            return self.reply(200, calls)
        m = INSIGHTS_PATH.match(url.path)
        if m:
            return self.insights_get(m.group(2), url.query)
        if PATH.match(url.path):
            return self.reply(400, GraphError(100, 0, "Unsupported get request.").body())
        return self.reply(404, {"error": {"message": "Unknown path", "code": 803}})

    def control(self, body):
        st = self.server.state
        try:
            cfg = json.loads(body or b"{}")
            if not isinstance(cfg, dict):
                raise ValueError("config must be an object")
            with st.lock:
                if cfg.get("reset"):
                    st.reset()
                if cfg.get("clear_faults"):
                    st.faults = []
                for pixel, token in (cfg.get("tokens") or {}).items():
                    st.tokens[str(pixel)] = str(token)
                for pixel in cfg.get("forget_tokens") or []:
                    st.tokens.pop(str(pixel), None)
            for f in cfg.get("faults") or []:
                st.add_fault(f)
        except (ValueError, TypeError) as e:
            return self.reply(400, {"ok": False, "error": str(e)})
        return self.reply(200, {"ok": True})

    # -- the Graph API -----------------------------------------------------
    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        body = self.read_body()
        if url.path == "/_fake/config":
            return self.control(body)
        if url.path == "/_fake/insights":
            return self.insights_control(body)
        m = PATH.match(url.path)
        if not m:
            return self.reply(400, GraphError(100, 0, "Unsupported post request.").body())
        self.events_post(m.group(2), url.query, body)

    def record_request(self, pixel, status, code, subcode, n, fault):
        st = self.server.state
        with st.lock:
            st.stats["requests"] += 1
            if status == 200:
                st.stats["accepted_requests"] += 1
            else:
                st.stats["rejected_requests"] += 1
            st.requests.append({"pixel": pixel, "status": status, "code": code,
                                "subcode": subcode, "events": n, "fault": fault,
                                "time": time.time()})

    def parse(self, query, body):
        """Returns (token, data list, test_event_code) or raises GraphError."""
        params = urllib.parse.parse_qs(query)
        token = params.get("access_token", [None])[0]
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        test_code = None
        if ctype == "application/x-www-form-urlencoded" and not body.lstrip().startswith(b"{"):
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            token = form.get("access_token", [token])[0]
            test_code = form.get("test_event_code", [None])[0]
            raw = form.get("data", [None])[0]
            if raw is None:
                raise GraphError(100, 2804001, "(#100) The parameter data is required")
            try:
                data = json.loads(raw)
            except ValueError:
                raise GraphError(100, 2804002, "(#100) param data must be an array.")
        else:
            try:
                obj = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise GraphError(100, 2804002, "(#100) Invalid JSON body")
            if not isinstance(obj, dict):
                raise GraphError(100, 2804002, "(#100) The body must be a JSON object")
            token = obj.get("access_token", token)
            test_code = obj.get("test_event_code")
            if "data" not in obj:
                raise GraphError(100, 2804001, "(#100) The parameter data is required")
            data = obj["data"]
        if not isinstance(data, list):
            raise GraphError(100, 2804002, "(#100) param data must be an array.")
        return token, data, test_code

    def events_post(self, pixel, query, body):
        st = self.server.state
        now = int(time.time())
        data, test_code, fault = [], None, None
        try:
            token, data, test_code = self.parse(query, body)
            ids = {e.get("event_id") for e in data if isinstance(e, dict)}
            fault = st.take_fault(pixel, ids)
            if fault and self.apply_fault(fault, pixel, data, test_code):
                return
            if not token:
                raise GraphError(190, 0, "An access token is required to request this resource.",
                                 status=400)
            with st.lock:
                known = token in st.tokens.values()
                mine = st.tokens.get(pixel) == token
            if not known:
                raise GraphError(190, 463, "Error validating access token: Session has expired.")
            if not mine:
                raise GraphError(100, 33, "Unsupported post request. Object with ID '%s' does "
                                 "not exist, cannot be loaded due to missing permissions, or "
                                 "does not support this operation." % pixel)
            if not data or len(data) > MAX_EVENTS:
                raise invalid(2804007, "Invalid number of events",
                              "data must hold 1 to %d events, got %d" % (MAX_EVENTS, len(data)))
            for i, ev in enumerate(data):
                validate_event(i, ev, now)
        except GraphError as e:
            self.record_request(pixel, e.status, e.code, e.subcode, len(data),
                                fault["kind"] if fault else None)
            return self.reply(e.status, e.body())
        self.accept(pixel, data, test_code)
        self.record_request(pixel, 200, 0, 0, len(data), fault["kind"] if fault else None)
        self.reply(200, {"events_received": len(data), "messages": [], "fbtrace_id": trace_id()})

    def accept(self, pixel, data, test_code):
        st = self.server.state
        received = time.time()
        with st.lock:
            pp = st.stats["per_pixel"].setdefault(pixel, {"events": 0, "duplicates": 0})
            for ev in data:
                eid = ev.get("event_id")
                copies = st.seen.get(eid, 0)
                if eid is not None:
                    st.seen[eid] = copies + 1
                if copies:
                    st.stats["duplicates"] += 1
                    pp["duplicates"] += 1
                st.stats["events"] += 1
                pp["events"] += 1
                st.events.append({"pixel": pixel, "event_id": eid,
                                  "event_name": ev.get("event_name"), "event": ev,
                                  "test_event_code": test_code, "received": received})

    def apply_fault(self, f, pixel, data, test_code):
        """Plays fault F. Returns True when the request was answered (or dropped)."""
        kind = f["kind"]
        if kind == "status":
            status = int(f.get("status", 503))
            self.record_request(pixel, status, f.get("code", 2), 0, len(data), kind)
            if "body" in f:
                self.reply(status, raw=str(f["body"]).encode())
            else:
                self.reply(status, GraphError(int(f.get("code", 2)), int(f.get("subcode", 0)),
                                              "Service temporarily unavailable", status=status,
                                              transient=True).body())
            return True
        if kind == "timeout":
            if f.get("accept"):
                self.accept(pixel, data, test_code)
            self.record_request(pixel, 0, 0, 0, len(data), kind)
            time.sleep(float(f.get("sleep", 5)))
            self.drop_connection(rst=False)
            return True
        if kind == "throttle":
            code = int(f.get("code", 17))
            sub = int(f.get("subcode", 2446079 if code == 17 else 0))
            headers = {}
            if "wait_minutes" in f:
                headers["X-Business-Use-Case-Usage"] = json.dumps(
                    {pixel: [{"type": "ads_management", "call_count": 100, "total_cputime": 100,
                              "total_time": 100,
                              "estimated_time_to_regain_access": f["wait_minutes"],
                              "ads_api_access_tier": "development_access"}]})
            if "retry_after" in f:
                headers["Retry-After"] = str(f["retry_after"])
            self.record_request(pixel, 400, code, sub, len(data), kind)
            self.reply(400, GraphError(code, sub, "(#%d) User request limit reached" % code).body(),
                       headers=headers)
            return True
        if kind == "token":
            self.record_request(pixel, 400, 190, 463, len(data), kind)
            self.reply(400, GraphError(190, 463, "Error validating access token: Session has "
                                       "expired.").body())
            return True
        if kind == "reject":
            self.record_request(pixel, 400, 100, 2804002, len(data), kind)
            self.reply(400, invalid(2804002, "Invalid parameter",
                                    "event %s is invalid (injected)" % f.get("event_id")).body())
            return True
        if kind == "slow":
            time.sleep(float(f.get("sleep", 1)))
            return False
        if kind == "reset":
            self.record_request(pixel, 0, 0, 0, len(data), kind)
            self.drop_connection(rst=True)
            return True
        if kind == "malformed":
            self.record_request(pixel, 200, 0, 0, len(data), kind)
            self.reply(200, raw=str(f.get("body", "<html>OK</html>")).encode())
            return True
        return False


    # -- Marketing API Insights -------------------------------------------
    def insights_control(self, body):
        st = self.server.state
        try:
            cfg = json.loads(body or b"{}")
            if not isinstance(cfg, dict):
                raise ValueError("config must be an object")
            account = cfg.get("account")
            account = str(account) if account is not None else None
            with st.lock:
                if cfg.get("reset"):
                    st.accounts, st.ifaults, st.icalls = {}, [], []
                if cfg.get("reset_calls"):
                    st.icalls = []
                if cfg.get("clear_faults"):
                    st.ifaults = []
                if account is not None:
                    acc = st.accounts.setdefault(account, {"token": None, "rows": [],
                                                           "page_size": 25, "usage_pct": 5,
                                                           "regain_minutes": 0})
                    if "token" in cfg:
                        acc["token"] = str(cfg["token"])
                    for key in ("page_size", "usage_pct", "regain_minutes"):
                        if key in cfg:
                            acc[key] = int(cfg[key])
                    if "rows" in cfg:
                        rows = []
                        for r in cfg["rows"]:
                            day = r.get("date_start") or r.get("day")
                            if not isinstance(day, str) or not DAY.match(day):
                                raise ValueError("row without a day: %r" % r)
                            row = {"campaign_id": str(r["campaign_id"]),
                                   "campaign_name": r.get("campaign_name", ""),
                                   "spend": r.get("spend", "0"),
                                   "account_currency": r.get("account_currency", "BRL"),
                                   "date_start": day, "date_stop": r.get("date_stop", day)}
                            rows.append(row)
                        rows.sort(key=lambda x: (x["date_start"], x["campaign_id"]))
                        acc["rows"] = rows
            for f in cfg.get("faults") or []:
                st.add_ifault(f, account)
        except (ValueError, TypeError, KeyError) as e:
            return self.reply(400, {"ok": False, "error": str(e)})
        return self.reply(200, {"ok": True})

    def usage_headers(self, account, pct, regain_minutes):
        return {
            "X-Business-Use-Case-Usage": json.dumps(
                {account: [{"type": "ads_insights", "call_count": pct,
                            "total_cputime": max(1, pct // 2), "total_time": pct // 2,
                            "estimated_time_to_regain_access": regain_minutes,
                            "ads_api_access_tier": "standard_access"}]}),
            "X-App-Usage": json.dumps({"call_count": pct // 3, "total_cputime": 1,
                                       "total_time": 1}),
            "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": pct,
                                              "reset_time_duration": regain_minutes * 60}),
            "X-FB-Ads-Insights-Throttle": json.dumps({"app_id_util_pct": pct // 3,
                                                      "acc_id_util_pct": pct}),
        }

    def insights_get(self, account, query):
        st = self.server.state
        params = urllib.parse.parse_qs(query)
        auth_header = self.headers.get("Authorization") or ""
        token, auth = None, None
        m = re.match(r"^(?:Bearer|OAuth)\s+(\S+)$", auth_header)
        if m:
            token, auth = m.group(1), "header"
        elif "access_token" in params:
            token, auth = params["access_token"][0], "query"
        since = until = None
        try:
            tr = json.loads(params.get("time_range", ["null"])[0])
            if isinstance(tr, dict):
                since, until = tr.get("since"), tr.get("until")
        except ValueError:
            pass
        after = params.get("after", [None])[0]
        call = {"account": account, "since": since, "until": until, "after": after,
                "auth": auth, "token_ok": False, "status": 0, "code": 0, "fault": None,
                "time": time.time()}

        def answer(status, obj=None, raw=None, headers=None, code=0):
            call["status"], call["code"] = status, code
            with st.lock:
                st.icalls.append(call)
            self.reply(status, obj, raw=raw, headers=headers)

        with st.lock:
            acc = st.accounts.get(account)
            acc = dict(acc) if acc else None
        if acc is not None:
            call["token_ok"] = token is not None and token == acc["token"]
        fault = st.take_ifault(account)
        if fault:
            call["fault"] = fault["kind"]
            kind = fault["kind"]
            if kind == "token":
                e = GraphError(190, 463, "Error validating access token: Session has expired.")
                return answer(400, e.body(), code=190)
            if kind == "throttle":
                code = int(fault.get("code", 17))
                sub = int(fault.get("subcode", 2446079 if code == 17 else 0))
                e = GraphError(code, sub, "(#%d) User request limit reached" % code)
                return answer(400, e.body(), code=code, headers=self.usage_headers(
                    account, 100, int(fault.get("wait_minutes", 1))))
            if kind == "status":
                status = int(fault.get("status", 500))
                e = GraphError(2, 0, "Service temporarily unavailable", status=status,
                               transient=True)
                return answer(status, e.body(), code=2)
            if kind == "malformed":
                return answer(200, raw=str(fault.get("body", "<html>OK</html>")).encode())
        if acc is None:
            e = GraphError(100, 33, "Unsupported get request. Object with ID 'act_%s' does "
                           "not exist, cannot be loaded due to missing permissions, or does "
                           "not support this operation." % account)
            return answer(400, e.body(), code=100)
        if token is None:
            e = GraphError(190, 0, "An access token is required to request this resource.")
            return answer(400, e.body(), code=190)
        if not call["token_ok"]:
            e = GraphError(190, 463, "Error validating access token: Session has expired.")
            return answer(400, e.body(), code=190)
        fields = set((params.get("fields", [""])[0]).split(","))
        if params.get("level", [""])[0] != "campaign" \
                or params.get("time_increment", [""])[0] != "1" \
                or not {"campaign_id", "spend"} <= fields \
                or not (isinstance(since, str) and DAY.match(since)) \
                or not (isinstance(until, str) and DAY.match(until)) or since > until:
            e = GraphError(100, 0, "(#100) level=campaign, time_increment=1, fields with "
                           "campaign_id and spend, and time_range {since, until} are required")
            return answer(400, e.body(), code=100)
        rows = [r for r in acc["rows"] if since <= r["date_start"] <= until]
        size = acc["page_size"]
        try:
            if "limit" in params:
                size = max(1, min(size, int(params["limit"][0])))
            start = int(after) if after else 0
        except ValueError:
            e = GraphError(100, 0, "(#100) bad limit or cursor")
            return answer(400, e.body(), code=100)
        page = [dict(r) for r in rows[start:start + size]]
        if fault and fault["kind"] == "bad_row":
            page.append({"campaign_id": "1", "campaign_name": "bad", "spend": "12,3.4",
                         "date_start": since, "date_stop": since})
        body = {"data": page, "paging": {"cursors": {"before": str(start),
                                                     "after": str(start + len(page))}}}
        if start + size < len(rows):
            q = {k: v[0] for k, v in params.items()}
            q["after"] = str(start + size)
            host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
            if fault and fault["kind"] == "foreign_next":
                host = "attacker.invalid"
            body["paging"]["next"] = "http://%s%s?%s" % (
                host, urllib.parse.urlsplit(self.path).path, urllib.parse.urlencode(q))
        answer(200, body, headers=self.usage_headers(account, acc["usage_pct"],
                                                     acc["regain_minutes"]))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description="Fake Meta Conversions API for tests.")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--quiet", action="store_true", help="no access log")
    args = ap.parse_args()
    srv = Server((args.host, args.port), Handler)
    srv.state = State()
    srv.quiet = args.quiet
    sys.stderr.write("fake_meta: listening on %s:%d\n" % (args.host, args.port))
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
