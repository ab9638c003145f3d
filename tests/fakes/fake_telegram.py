#!/usr/bin/env python3
"""fake_telegram — a local stand-in for the Telegram Bot API, for tests.

Speaks the documented wire format (reference/telegram-and-pix.md §1):

    GET|POST /bot<TOKEN>/<method>     params as query string, form-urlencoded
                                      or JSON body; method names are
                                      case-insensitive
    -> 200 {"ok":true,"result":...}
    -> 401 {"ok":false,"error_code":401,"description":"Unauthorized"} (unknown token)
    -> 404 {"ok":false,"error_code":404,"description":"Not Found"}    (unknown method)

Only tokens registered through the control API are accepted. Implemented
methods: getMe. To add one, write `def m_sendmessage(state, bot, params)`
returning the result (or raising ApiError) and list it in METHODS.

Control API (for the test scripts, never sent by rastro):

    GET  /_fake/health            -> {"ok":true}
    POST /_fake/bots              JSON {"token":"123:abc","username":"my_bot","id":123}
                                  registers a bot ("id" defaults to the token's prefix)
    GET  /_fake/calls             -> [{"method":"getMe","bot_id":123,"http":"GET",
                                       "params":{...},"status":200}, ...]
                                  every Bot API call so far; the token is reduced to
                                  its bot id (the part before ':')
    POST /_fake/reset             forgets calls (bots stay)

The token is never printed: the access log shows /bot<id>:***/<method>.
"""

import argparse
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# "/bot<TOKEN>" at the start of a request path (after the method and a space).
TOKEN_IN_PATH = re.compile(r"(^|\s)/bot([^/\s]*)")


class ApiError(Exception):
    """A Bot API error: becomes {"ok":false,"error_code":code,...}."""

    def __init__(self, code, description, parameters=None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


class State:
    """Everything the fake knows; shared by the handler threads under a lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.bots = {}      # token -> {"id":..., "username":..., "first_name":...}
        self.calls = []     # recorded Bot API calls (no tokens)


def bot_id_of(token):
    """The part of TOKEN before ':' as an int, or None (never the secret)."""
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else None


# ---- Bot API methods: (state, bot, params) -> result -------------------------

def m_getme(state, bot, params):
    return {
        "id": bot["id"],
        "is_bot": True,
        "first_name": bot.get("first_name", bot["username"]),
        "username": bot["username"],
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


METHODS = {
    "getme": m_getme,
}


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-telegram/1"
    protocol_version = "HTTP/1.1"

    # -- plumbing --
    @property
    def state(self):
        return self.server.state

    def log_message(self, fmt, *args):
        # The request line carries the token: mask it before logging.
        def mask(m):
            bid = bot_id_of(m.group(2))
            return m.group(1) + "/bot" + (("%s:***" % bid) if bid is not None else "<token>")
        line = TOKEN_IN_PATH.sub(mask, fmt % args)
        sys.stderr.write("fake_telegram: %s\n" % line)

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def parse_params(self, query, body):
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if body:
            if ctype == "application/json":
                data = json.loads(body.decode("utf-8"))
                if not isinstance(data, dict):
                    raise ApiError(400, "Bad Request: JSON object expected")
                params.update(data)
            elif ctype == "application/x-www-form-urlencoded":
                params.update({k: v[-1] for k, v in
                               urllib.parse.parse_qs(body.decode("utf-8")).items()})
            else:
                raise ApiError(400, "Bad Request: unsupported Content-Type %s" % ctype)
        return params

    # -- dispatch --
    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self.read_body()
        except (ValueError, OSError):
            return self.send_json(400, {"ok": False, "error_code": 400,
                                        "description": "Bad Request"})
        if url.path.startswith("/_fake/"):
            return self.control(url.path[len("/_fake/"):], body)
        if url.path.startswith("/bot"):
            return self.bot_api(url, body)
        self.send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def bot_api(self, url, body):
        rest = url.path[len("/bot"):]
        token, _, method = rest.partition("/")
        method = urllib.parse.unquote(method)
        call = {"method": method, "bot_id": bot_id_of(token), "http": self.command}
        try:
            with self.state.lock:
                bot = self.state.bots.get(token)
            if bot is None:
                raise ApiError(401, "Unauthorized")
            handler = METHODS.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            try:
                params = self.parse_params(url.query, body)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "Bad Request: can't parse parameters")
            call["params"] = params
            result = handler(self.state, bot, params)
            status, reply = 200, {"ok": True, "result": result}
        except ApiError as e:
            reply = {"ok": False, "error_code": e.code, "description": e.description}
            if e.parameters:
                reply["parameters"] = e.parameters
            status = e.code
        call["status"] = status
        with self.state.lock:
            self.state.calls.append(call)
        self.send_json(status, reply)

    def control(self, what, body):
        if what == "health" and self.command == "GET":
            return self.send_json(200, {"ok": True})
        if what == "calls" and self.command == "GET":
            with self.state.lock:
                calls = list(self.state.calls)
            return self.send_json(200, calls)
        if what == "reset" and self.command == "POST":
            with self.state.lock:
                self.state.calls.clear()
            return self.send_json(200, {"ok": True})
        if what == "bots" and self.command == "POST":
            try:
                spec = json.loads(body.decode("utf-8"))
                token = spec["token"]
                bid = spec.get("id", bot_id_of(token))
                if not isinstance(token, str) or not isinstance(spec["username"], str) \
                        or not isinstance(bid, int):
                    raise ValueError("token, username and id are needed")
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
                return self.send_json(400, {"ok": False, "error": str(e)})
            with self.state.lock:
                self.state.bots[token] = {"id": bid, "username": spec["username"],
                                          "first_name": spec.get("first_name",
                                                                 spec["username"])}
            return self.send_json(200, {"ok": True})
        self.send_json(404, {"ok": False, "error": "unknown control endpoint"})


def main():
    ap = argparse.ArgumentParser(description="Local fake of the Telegram Bot API.")
    ap.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = State()
    sys.stderr.write("fake_telegram: listening on http://%s:%d\n" % (args.host, args.port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
