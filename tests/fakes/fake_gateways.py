#!/usr/bin/env python3
"""fake_gateways — local stand-ins for the Mercado Pago, PushinPay and SyncPay PIX APIs.

One process serves all three on one port (their paths do not collide), with
the wire formats of reference/telegram-and-pix.md §2:

  Mercado Pago (amounts in reais)
    POST /v1/payments              Bearer access_token, X-Idempotency-Key required
                                   (400 without); a repeated key returns the SAME
                                   payment. Body checks: transaction_amount > 0 with at
                                   most 2 decimals, payment_method_id "pix",
                                   payer.email, optional description,
                                   external_reference, notification_url (http/https),
                                   date_of_expiration (yyyy-MM-ddTHH:mm:ss.SSS±HH:MM|Z).
                                   -> 201 payment with point_of_interaction.
                                   transaction_data.{qr_code, qr_code_base64 (PNG, no
                                   data: prefix), ticket_url}
    GET  /v1/payments/<id>         -> 200 payment | 404
  PushinPay (amounts in centavos)
    POST /api/pix/cashIn           Bearer token; value integer >= 50 (else 422),
                                   optional webhook_url -> 200 {id (uuid), qr_code,
                                   qr_code_base64 ("data:image/png;base64,..."),
                                   status "created", value, ...}
    GET  /api/transactions/<id>    -> 200 transaction (code in pix_details.emv) | 200 []
  SyncPay (amounts in reais)
    POST /api/partner/v1/auth-token     {client_id, client_secret} -> {access_token,
                                        token_type, expires_in, expires_at} | 401
    POST /api/partner/v1/cash-in        Bearer; {amount, description, webhook_url,
                                        client:{name, cpf (11 digits), email, phone}}
                                        -> {message, pix_code, identifier}
    GET  /api/partner/v1/transaction/<identifier>  -> {"data": {identifier, status,
                                        amount, pix_code, ...}} | 404
    POST /api/partner/v1/webhooks       {title, url, event} registers a webhook URL
    GET  /api/partner/v1/webhooks       lists them
  An invalid or expired bearer token gets 401 {"message":"Unauthenticated."}.

Every pix code is a valid dynamic BR Code (EMV TLV, CRC-16/CCITT-FALSE).

Default credentials (replace with /_fake/config):
    mercadopago  {"access_token": "TEST-mp-access-token", "webhook_secret": "mp-webhook-secret"}
    pushinpay    {"token": "pp-api-token", "webhook_token": "pp-webhook-token"}
    syncpay      {"client_id": "sp-client-id", "client_secret": "sp-client-secret"}

Control API (for tests; never called by rastro):
    GET  /_fake/health             -> {"ok": true}
    POST /_fake/config             {"credentials": {"<gateway>": {...}}  (merged per gateway),
                                    "faults": {"<route>": FAULT, ...}     (replaces that route's),
                                    "syncpay_token_ttl": seconds}
           routes: mp.create mp.read pp.create pp.read sp.token sp.create sp.read sp.webhooks
           FAULT:  {"status": 500|429|401|..., "count": N}   answer that status (nothing done)
                   {"malformed": true, "count": N}           answer 200 with broken JSON
                   {"hang": SECONDS, "count": N}             sleep, then serve normally
                   (count defaults to 1)
    POST /_fake/revoke_tokens      invalidates every SyncPay token issued so far
    POST /_fake/pay                {"gateway", "id", "amount_cents" (optional override of the
                                    paid amount), "status" (optional: the gateway's own word,
                                    default approved / paid / completed), "webhook": true|false
                                    (default true), "forge": true (MP: wrong signature;
                                    PushinPay: wrong token; SyncPay has no auth: ignored),
                                    "duplicate": N (send it N times), "form": true (PushinPay:
                                    form-urlencoded body)}
                                   -> {"charge": {...}, "deliveries": [{"url","status"}]}
           Webhooks are sent before the reply, to the URL recorded at creation
           (MP notification_url + "?data.id=<id>&type=payment", signed with
           webhook_secret; PushinPay webhook_url with x-pushinpay-token). For
           SyncPay the fake uses the URL registered with POST
           /api/partner/v1/webhooks (event cashin), falling back to the cash-in
           webhook_url when none is registered.
    GET  /_fake/charges            -> [{"gateway","id","status","amount_cents",
                                        "idempotency_key","webhook_url",...}]
    GET  /_fake/calls              -> [{"method","path","route","status","auth",
                                        "idempotency_key","body"}] (no secrets: tokens are
                                        reported as auth ok/bad/missing, token bodies omitted)
    POST /_fake/reset              forgets charges, calls, faults, tokens and webhooks
                                   (credentials stay)
"""

import argparse
import base64
import hashlib
import hmac
import json
import re
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


DEFAULT_CREDENTIALS = {
    "mercadopago": {"access_token": "TEST-mp-access-token", "webhook_secret": "mp-webhook-secret"},
    "pushinpay": {"token": "pp-api-token", "webhook_token": "pp-webhook-token"},
    "syncpay": {"client_id": "sp-client-id", "client_secret": "sp-client-secret"},
}
ROUTES = ("mp.create", "mp.read", "pp.create", "pp.read", "sp.token", "sp.create", "sp.read",
          "sp.webhooks")
PAID_WORD = {"mercadopago": "approved", "pushinpay": "paid", "syncpay": "completed"}
MP_EXPIRY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")


# ---- BR Code and PNG ----------------------------------------------------------

def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0."""
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def tlv(tag, value):
    assert len(value) <= 99
    return "%s%02d%s" % (tag, len(value), value)


def brcode(txid, amount_cents, location):
    """A dynamic BR Code (PIX copia e cola) with a correct CRC."""
    txid = re.sub(r"[^A-Za-z0-9]", "", txid)[:25] or "***"
    body = (tlv("00", "01") + tlv("01", "12")
            + tlv("26", tlv("00", "br.gov.bcb.pix") + tlv("25", location))
            + tlv("52", "0000") + tlv("53", "986")
            + tlv("54", "%d.%02d" % (amount_cents // 100, amount_cents % 100))
            + tlv("58", "BR") + tlv("59", "RASTRO FAKE LTDA") + tlv("60", "SAO PAULO")
            + tlv("62", tlv("05", txid)) + "6304")
    return body + "%04X" % crc16(body.encode())


def tiny_png():
    """A valid 1x1 white PNG."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff")) + chunk(b"IEND", b""))


PNG_B64 = base64.b64encode(tiny_png()).decode()


def cents_of_reais(value):
    """Reais (JSON number or string) -> centavos, or None if not a positive 2-decimal amount."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    text = value if isinstance(value, str) else repr(value)
    m = re.fullmatch(r"(\d+)(?:\.(\d{1,2})0*)?", text.strip())
    if not m:
        return None
    cents = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    return cents if cents > 0 else None


def reais(cents):
    """Centavos -> a JSON number in reais (19.9 for 1990, like the real APIs)."""
    return cents / 100 if cents % 100 else cents // 100


def iso(ts, offset_h=-3):
    t = time.gmtime(ts + offset_h * 3600)
    sign = "-" if offset_h < 0 else "+"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".000%s%02d:00" % (sign, abs(offset_h))


class Fail(Exception):
    """An API error reply."""

    def __init__(self, status, body):
        super().__init__(str(body))
        self.status = status
        self.body = body


def mp_error(status, message, error="bad_request"):
    return Fail(status, {"message": message, "error": error, "status": status,
                         "cause": [{"code": status, "description": message}]})


# ---- state ----------------------------------------------------------------------

class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.credentials = json.loads(json.dumps(DEFAULT_CREDENTIALS))
        self.token_ttl = 3600
        self.reset()

    def reset(self):
        self.charges = {}           # (gateway, id) -> charge dict
        self.order = []             # creation order of (gateway, id)
        self.mp_keys = {}           # idempotency key -> payment id
        self.mp_next_id = 1310000001
        self.sp_tokens = {}         # token -> expiry (unix s)
        self.sp_webhooks = []       # registered {id, title, url, event}
        self.faults = {}            # route -> fault dict with "count"
        self.calls = []

    def take_fault(self, route):
        with self.lock:
            f = self.faults.get(route)
            if not f or f.get("count", 1) <= 0:
                return None
            f["count"] = f.get("count", 1) - 1
            return dict(f)


STATE = State()


def bearer(headers):
    auth = headers.get("Authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


def auth_state(given, expected):
    if given is None:
        return "missing"
    return "ok" if hmac.compare_digest(given.encode(), expected.encode()) else "bad"


# ---- Mercado Pago ---------------------------------------------------------------

def mp_payment_view(c):
    p = {
        "id": int(c["id"]),
        "status": c["status"],
        "status_detail": "accredited" if c["status"] == "approved" else
                         "pending_waiting_transfer" if c["status"] == "pending" else c["status"],
        "transaction_amount": reais(c["paid_cents"] if c["status"] == "approved" and c.get("paid_cents")
                                    else c["amount_cents"]),
        "currency_id": "BRL",
        "payment_method_id": "pix",
        "payment_type_id": "bank_transfer",
        "description": c.get("description"),
        "external_reference": c.get("external_reference"),
        "notification_url": c.get("webhook_url"),
        "date_created": iso(c["created_at"]),
        "date_of_expiration": c.get("date_of_expiration"),
        "date_approved": iso(c["paid_at"]) if c.get("paid_at") else None,
        "payer": {"email": c.get("payer_email")},
        "live_mode": False,
        "point_of_interaction": {
            "type": "PIX",
            "transaction_data": {
                "qr_code": c["pix_code"],
                "qr_code_base64": PNG_B64,
                "ticket_url": "https://www.mercadopago.com.br/payments/%s/ticket" % c["id"],
            },
        },
    }
    return p


def mp_create(h, body):
    creds = STATE.credentials["mercadopago"]
    a = auth_state(bearer(h.headers), creds["access_token"])
    h.note["auth"] = a
    if a != "ok":
        raise mp_error(401, "invalid access token", "unauthorized")
    key = h.headers.get("X-Idempotency-Key")
    h.note["idempotency_key"] = key
    if not key:
        raise mp_error(400, "Header X-Idempotency-Key can't be null")
    if not isinstance(body, dict):
        raise mp_error(400, "body must be a JSON object")
    with STATE.lock:
        if key in STATE.mp_keys:
            c = STATE.charges[("mercadopago", STATE.mp_keys[key])]
            return 201, mp_payment_view(c)
    cents = cents_of_reais(body.get("transaction_amount"))
    if isinstance(body.get("transaction_amount"), str) or cents is None:
        raise mp_error(400, "transaction_amount must be a positive number with 2 decimals")
    if body.get("payment_method_id") != "pix":
        raise mp_error(400, "payment_method_id must be pix")
    payer = body.get("payer")
    email = payer.get("email") if isinstance(payer, dict) else None
    if not isinstance(email, str) or "@" not in email:
        raise mp_error(400, "payer.email must be a valid email")
    for f in ("description", "external_reference", "notification_url", "date_of_expiration"):
        if f in body and not isinstance(body[f], str):
            raise mp_error(400, "%s must be a string" % f)
    url = body.get("notification_url")
    if url is not None and not re.match(r"^https?://[^\s]+$", url):
        raise mp_error(400, "notification_url attribute must be url valid")
    exp = body.get("date_of_expiration")
    if exp is not None and not MP_EXPIRY.match(exp):
        raise mp_error(400, "date_of_expiration has an invalid format")
    with STATE.lock:
        if key in STATE.mp_keys:        # raced with the same key
            return 201, mp_payment_view(STATE.charges[("mercadopago", STATE.mp_keys[key])])
        pid = str(STATE.mp_next_id)
        STATE.mp_next_id += 7
        now = int(time.time())
        c = {
            "gateway": "mercadopago", "id": pid, "status": "pending", "amount_cents": cents,
            "idempotency_key": key, "webhook_url": url, "created_at": now,
            "description": body.get("description"),
            "external_reference": body.get("external_reference"),
            "payer_email": email,
            "date_of_expiration": exp or iso(now + 86400),
            "pix_code": brcode("MP" + pid, cents, "pix.fake.mercadopago.test/qr/v2/%s" % uuid.uuid4().hex),
        }
        STATE.charges[("mercadopago", pid)] = c
        STATE.order.append(("mercadopago", pid))
        STATE.mp_keys[key] = pid
        return 201, mp_payment_view(c)


def mp_read(h, pid):
    a = auth_state(bearer(h.headers), STATE.credentials["mercadopago"]["access_token"])
    h.note["auth"] = a
    if a != "ok":
        raise mp_error(401, "invalid access token", "unauthorized")
    with STATE.lock:
        c = STATE.charges.get(("mercadopago", pid))
        if not c:
            raise mp_error(404, "Payment not found", "not_found")
        return 200, mp_payment_view(c)


def mp_webhook(c, forge):
    secret = STATE.credentials["mercadopago"]["webhook_secret"]
    if forge:
        secret = secret + "-forged"
    ts = str(int(time.time()))
    request_id = str(uuid.uuid4())
    manifest = "id:%s;request-id:%s;ts:%s;" % (c["id"].lower(), request_id, ts)
    v1 = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    url = c["webhook_url"]
    url += ("&" if "?" in url else "?") + "data.id=%s&type=payment" % c["id"]
    body = {"action": "payment.updated", "api_version": "v1", "data": {"id": c["id"]},
            "date_created": iso(int(time.time())), "id": int(time.time() * 1000),
            "live_mode": False, "type": "payment", "user_id": 123456789}
    headers = {"Content-Type": "application/json", "x-signature": "ts=%s,v1=%s" % (ts, v1),
               "x-request-id": request_id}
    return url, headers, json.dumps(body).encode()


# ---- PushinPay ------------------------------------------------------------------

def pp_view(c, with_code=True):
    paid = c["status"] == "paid"
    v = {
        "id": c["id"],
        "status": c["status"],
        "value": c.get("paid_cents") or c["amount_cents"] if paid else c["amount_cents"],
        "webhook_url": c.get("webhook_url"),
        "split_rules": [],
        "end_to_end_id": ("E%032d" % int(c["created_at"])) if paid else None,
        "payer_name": "Comprador Fake" if paid else None,
        "payer_national_registration": "12345678909" if paid else None,
    }
    if with_code:
        v["qr_code"] = c["pix_code"]
        v["qr_code_base64"] = "data:image/png;base64," + PNG_B64
        v["webhook"] = None
    else:
        v["pix_details"] = {"emv": c["pix_code"],
                            "expiration_date": time.strftime("%Y-%m-%d %H:%M:%S",
                                                             time.gmtime(c["created_at"] + 86400))}
    return v


def pp_auth(h):
    a = auth_state(bearer(h.headers), STATE.credentials["pushinpay"]["token"])
    h.note["auth"] = a
    if a != "ok":
        raise Fail(401, {"message": "Unauthenticated."})


def pp_create(h, body):
    pp_auth(h)
    if not isinstance(body, dict):
        raise Fail(422, {"message": "The given data was invalid.", "errors": {"value": ["required"]}})
    value = body.get("value")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise Fail(422, {"message": "O campo value deve ser um número inteiro.",
                             "errors": {"value": ["O campo value deve ser um número inteiro."]}})
    if value < 50:
        raise Fail(422, {"message": "O campo value deve ser no mínimo 50.",
                         "errors": {"value": ["O campo value deve ser no mínimo 50."]}})
    url = body.get("webhook_url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://\S+$", url)):
        raise Fail(422, {"message": "O campo webhook url deve ser uma URL válida.",
                         "errors": {"webhook_url": ["invalid"]}})
    with STATE.lock:
        tid = str(uuid.uuid4())
        c = {"gateway": "pushinpay", "id": tid, "status": "created", "amount_cents": value,
             "idempotency_key": None, "webhook_url": url, "created_at": int(time.time()),
             "pix_code": brcode(tid, value, "pix.fake.pushinpay.test/qr/%s" % tid)}
        STATE.charges[("pushinpay", tid)] = c
        STATE.order.append(("pushinpay", tid))
        return 200, pp_view(c)


def pp_read(h, tid):
    pp_auth(h)
    with STATE.lock:
        c = STATE.charges.get(("pushinpay", tid))
        if not c:
            return 200, []
        return 200, pp_view(c, with_code=False)


def pp_webhook(c, forge, form):
    token = STATE.credentials["pushinpay"]["webhook_token"]
    if forge:
        token = "forged-" + token
    v = pp_view(c)
    body = {k: v[k] for k in ("id", "status", "value", "end_to_end_id", "payer_name",
                              "payer_national_registration")}
    headers = {"x-pushinpay-token": token}
    if form:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        data = urllib.parse.urlencode({k: ("" if x is None else x) for k, x in body.items()})
        return c["webhook_url"], headers, data.encode()
    headers["Content-Type"] = "application/json"
    return c["webhook_url"], headers, json.dumps(body).encode()


# ---- SyncPay --------------------------------------------------------------------

def sp_auth(h):
    token = bearer(h.headers)
    with STATE.lock:
        exp = STATE.sp_tokens.get(token) if token else None
    ok = exp is not None and exp > time.time()
    h.note["auth"] = "missing" if token is None else ("ok" if ok else "bad")
    if not ok:
        raise Fail(401, {"message": "Unauthenticated."})


def sp_token(h, body):
    creds = STATE.credentials["syncpay"]
    if not isinstance(body, dict) or not isinstance(body.get("client_id"), str) \
            or not isinstance(body.get("client_secret"), str):
        raise Fail(422, {"message": "client_id and client_secret are required"})
    ok = (hmac.compare_digest(body["client_id"].encode(), creds["client_id"].encode())
          and hmac.compare_digest(body["client_secret"].encode(), creds["client_secret"].encode()))
    h.note["auth"] = "ok" if ok else "bad"
    if not ok:
        raise Fail(401, {"message": "Unauthenticated."})
    token = "sp-" + uuid.uuid4().hex
    with STATE.lock:
        ttl = STATE.token_ttl
        STATE.sp_tokens[token] = time.time() + ttl
    return 200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                 "expires_at": iso(int(time.time()) + ttl)}


def sp_view(c):
    paid_cents = c.get("paid_cents") or c["amount_cents"]
    return {"identifier": c["id"], "reference_id": c["id"], "status": c["status"],
            "amount": reais(c["amount_cents"]),
            "final_amount": reais(paid_cents if c["status"] == "completed" else c["amount_cents"]),
            "currency": "BRL", "transaction_date": iso(c["created_at"]),
            "description": c.get("description"), "pix_code": c["pix_code"]}


def sp_create(h, body):
    sp_auth(h)
    if not isinstance(body, dict):
        raise Fail(422, {"message": "The given data was invalid."})
    cents = cents_of_reais(body.get("amount"))
    if isinstance(body.get("amount"), str) or cents is None:
        raise Fail(422, {"message": "The amount field must be a positive number.",
                         "errors": {"amount": ["invalid"]}})
    client = body.get("client")
    if not isinstance(client, dict):
        raise Fail(422, {"message": "The client field is required.", "errors": {"client": ["required"]}})
    for f in ("name", "cpf", "email", "phone"):
        if not isinstance(client.get(f), str) or not client[f]:
            raise Fail(422, {"message": "The client.%s field is required." % f,
                             "errors": {"client." + f: ["required"]}})
    if not re.fullmatch(r"\d{11}", client["cpf"]):
        raise Fail(422, {"message": "The client.cpf field must be 11 digits.",
                         "errors": {"client.cpf": ["invalid"]}})
    url = body.get("webhook_url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://\S+$", url)):
        raise Fail(422, {"message": "The webhook url must be a valid URL."})
    with STATE.lock:
        ident = str(uuid.uuid4())
        c = {"gateway": "syncpay", "id": ident, "status": "pending", "amount_cents": cents,
             "idempotency_key": None, "webhook_url": url, "created_at": int(time.time()),
             "description": body.get("description"), "client": client,
             "pix_code": brcode(ident, cents, "pix.fake.syncpay.test/qr/%s" % ident)}
        STATE.charges[("syncpay", ident)] = c
        STATE.order.append(("syncpay", ident))
        return 200, {"message": "Cash-in request successfully processed.",
                     "pix_code": c["pix_code"], "identifier": ident}


def sp_read(h, ident):
    sp_auth(h)
    with STATE.lock:
        c = STATE.charges.get(("syncpay", ident))
        if not c:
            raise Fail(404, {"message": "Transaction not found."})
        return 200, {"data": sp_view(c)}


def sp_webhooks(h, body):
    sp_auth(h)
    if h.command == "GET":
        with STATE.lock:
            return 200, {"data": list(STATE.sp_webhooks)}
    if not isinstance(body, dict) or not isinstance(body.get("url"), str) \
            or not re.match(r"^https?://\S+$", body["url"]):
        raise Fail(422, {"message": "The url field must be a valid URL."})
    with STATE.lock:
        w = {"id": len(STATE.sp_webhooks) + 1, "title": body.get("title", ""),
             "url": body["url"], "event": body.get("event", "cashin")}
        STATE.sp_webhooks.append(w)
        return 200, {"data": w}


def sp_webhook(c):
    with STATE.lock:
        urls = [w["url"] for w in STATE.sp_webhooks if w["event"] in ("cashin", "all")]
    url = urls[-1] if urls else c.get("webhook_url")
    v = sp_view(c)
    data = {"id": c["id"], "status": c["status"], "amount": v["amount"],
            "final_amount": v["final_amount"], "currency": "BRL", "payment_method": "pix",
            "pix_code": c["pix_code"], "client": c.get("client"),
            "created_at": v["transaction_date"], "updated_at": iso(int(time.time()))}
    return url, {"Content-Type": "application/json"}, json.dumps({"data": data}).encode()


# ---- control ----------------------------------------------------------------------

def public_charge(c):
    out = {k: v for k, v in c.items() if k not in ("client",)}
    return out


def deliver(url, headers, data):
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return {"url": url, "status": r.status}
    except urllib.error.HTTPError as e:
        return {"url": url, "status": e.code}
    except Exception as e:                                  # noqa: BLE001 (report any failure)
        return {"url": url, "status": 0, "error": str(e)}


def fake_pay(body):
    gw = body.get("gateway")
    cid = str(body.get("id", ""))
    with STATE.lock:
        c = STATE.charges.get((gw, cid))
        if not c:
            raise Fail(404, {"error": "no such charge", "gateway": gw, "id": cid})
        c["status"] = body.get("status") or PAID_WORD[gw]
        if body.get("amount_cents") is not None:
            c["paid_cents"] = int(body["amount_cents"])
        if c["status"] == PAID_WORD[gw]:
            c["paid_at"] = int(time.time())
        snapshot = dict(c)
    deliveries = []
    if body.get("webhook", True):
        n = int(body.get("duplicate", 1) or 1)
        for _ in range(max(1, n)):
            if gw == "mercadopago":
                url, headers, data = mp_webhook(snapshot, body.get("forge"))
            elif gw == "pushinpay":
                url, headers, data = pp_webhook(snapshot, body.get("forge"), body.get("form"))
            else:
                url, headers, data = sp_webhook(snapshot)
            if not url:
                deliveries.append({"url": None, "status": 0, "error": "no webhook url"})
                break
            deliveries.append(deliver(url, headers, data))
    return 200, {"charge": public_charge(snapshot), "deliveries": deliveries}


def fake_config(body):
    if not isinstance(body, dict):
        raise Fail(400, {"error": "JSON object expected"})
    with STATE.lock:
        for gw, creds in (body.get("credentials") or {}).items():
            if gw not in STATE.credentials or not isinstance(creds, dict):
                raise Fail(400, {"error": "unknown gateway %s" % gw})
            STATE.credentials[gw].update(creds)
        for route, fault in (body.get("faults") or {}).items():
            if route not in ROUTES:
                raise Fail(400, {"error": "unknown route %s (known: %s)" % (route, ", ".join(ROUTES))})
            if fault:
                fault = dict(fault)
                fault.setdefault("count", 1)
                STATE.faults[route] = fault
            else:
                STATE.faults.pop(route, None)
        if "syncpay_token_ttl" in body:
            STATE.token_ttl = int(body["syncpay_token_ttl"])
    return 200, {"ok": True}


# ---- HTTP ---------------------------------------------------------------------------

API = [
    ("POST", re.compile(r"^/v1/payments$"), "mp.create", lambda h, b, m: mp_create(h, b)),
    ("GET", re.compile(r"^/v1/payments/([^/]+)$"), "mp.read", lambda h, b, m: mp_read(h, m.group(1))),
    ("POST", re.compile(r"^/api/pix/cashIn$"), "pp.create", lambda h, b, m: pp_create(h, b)),
    ("GET", re.compile(r"^/api/transactions/([^/]+)$"), "pp.read", lambda h, b, m: pp_read(h, m.group(1))),
    ("POST", re.compile(r"^/api/partner/v1/auth-token$"), "sp.token", lambda h, b, m: sp_token(h, b)),
    ("POST", re.compile(r"^/api/partner/v1/cash-in$"), "sp.create", lambda h, b, m: sp_create(h, b)),
    ("GET", re.compile(r"^/api/partner/v1/transaction/([^/]+)$"), "sp.read",
     lambda h, b, m: sp_read(h, m.group(1))),
    ("POST", re.compile(r"^/api/partner/v1/webhooks$"), "sp.webhooks", lambda h, b, m: sp_webhooks(h, b)),
    ("GET", re.compile(r"^/api/partner/v1/webhooks$"), "sp.webhooks", lambda h, b, m: sp_webhooks(h, b)),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the second
    # waits for the client's delayed ACK (~40 ms per keep-alive reply).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_gateways: %s\n" % (fmt % args))

    def _send(self, status, obj=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if not raw:
            return raw, None
        try:
            return raw, json.loads(raw)
        except ValueError:
            return raw, ValueError

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        raw, body = self._body()
        if url.path.startswith("/_fake/"):
            return self._control(method, url.path, body)
        for m_, pattern, route, fn in API:
            m = pattern.match(url.path)
            if m_ != method or not m:
                continue
            self.note = {"method": method, "path": url.path, "route": route, "auth": None,
                         "idempotency_key": self.headers.get("X-Idempotency-Key")}
            if route != "sp.token" and isinstance(body, (dict, list)):
                self.note["body"] = body
            status, reply, rawreply = self._serve(route, fn, body, m)
            self.note["status"] = status
            with STATE.lock:
                STATE.calls.append(self.note)
            return self._send(status, reply, rawreply)
        self._send(404, {"message": "route not found", "path": url.path})

    def _serve(self, route, fn, body, m):
        fault = STATE.take_fault(route)
        if fault:
            self.note["fault"] = fault
            if fault.get("status"):
                return fault["status"], {"message": "fake fault %d" % fault["status"]}, None
            if fault.get("malformed"):
                return 200, None, b'{"id": 1, "status": "pend'
            if fault.get("hang"):
                time.sleep(float(fault["hang"]))
        if body is ValueError:
            return 400, {"message": "malformed JSON body"}, None
        try:
            status, reply = fn(self, body, m)
            return status, reply, None
        except Fail as e:
            return e.status, e.body, None

    def _control(self, method, path, body):
        try:
            if method == "GET" and path == "/_fake/health":
                return self._send(200, {"ok": True})
            if method == "GET" and path == "/_fake/charges":
                with STATE.lock:
                    out = [public_charge(STATE.charges[k]) for k in STATE.order]
                return self._send(200, out)
            if method == "GET" and path == "/_fake/calls":
                with STATE.lock:
                    out = list(STATE.calls)
                return self._send(200, out)
            if method == "POST" and path == "/_fake/config":
                return self._send(*fake_config(body))
            if method == "POST" and path == "/_fake/pay":
                if not isinstance(body, dict) or body.get("gateway") not in PAID_WORD:
                    raise Fail(400, {"error": "gateway must be one of %s" % ", ".join(PAID_WORD)})
                return self._send(*fake_pay(body))
            if method == "POST" and path == "/_fake/revoke_tokens":
                with STATE.lock:
                    STATE.sp_tokens.clear()
                return self._send(200, {"ok": True})
            if method == "POST" and path == "/_fake/reset":
                with STATE.lock:
                    STATE.reset()
                return self._send(200, {"ok": True})
            self._send(404, {"error": "unknown control endpoint %s %s" % (method, path)})
        except Fail as e:
            self._send(e.status, e.body)


def main():
    ap = argparse.ArgumentParser(description="Fake Mercado Pago, PushinPay and SyncPay APIs "
                                             "on one port (see the module docstring).")
    ap.add_argument("--port", type=int, default=8090, help="TCP port on 127.0.0.1 (default 8090)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write("fake_gateways: listening on http://%s:%d\n" % (args.host, args.port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
