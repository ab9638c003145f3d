"""api_client — the JSON API as the integration tests' Python scripts see it.

    from api_client import Checks, Client
    chk = Checks()                       # collects failures, prints each one
    a = Client(BASE, chk)                # one cookie jar = one browser
    a.login("ana@example.com", "senha forte 123")   # exits 1 if it fails
    st, text = a.call("GET", "/summary")            # raw: status and body text
    body = a.get("/summary?range=7d")               # parsed JSON; a status other
                                                    # than 200 is a failure
    chk.eq("summary", expected, body["metrics"])
    sys.exit(chk.exit_code())

Paths are below /api/v1. Writes carry the session's CSRF token (from the
login answer) unless csrf= says otherwise (None: no header).
"""
import http.cookiejar
import json
import sys
import urllib.error
import urllib.request

_SESSION = object()


class Checks:
    def __init__(self):
        self.failures = []

    def fail(self, msg):
        self.failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)

    def eq(self, what, expected, actual):
        if expected != actual:
            self.fail("%s:\n  expected %s\n  got      %s" % (
                what, json.dumps(expected, sort_keys=True), json.dumps(actual, sort_keys=True)))

    def exit_code(self):
        return 1 if self.failures else 0


class Client:
    def __init__(self, base, checks):
        self.base = base.rstrip("/")
        self.checks = checks
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = None

    def call(self, method, path, body=None, csrf=_SESSION, headers=None):
        """(status, body text) of METHOD /api/v1PATH with BODY as JSON."""
        data, h = None, dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if csrf is _SESSION:
            token = self.csrf if method not in ("GET", "HEAD") else None
        else:
            token = csrf
        if token:
            h["X-CSRF-Token"] = token
        req = urllib.request.Request(self.base + "/api/v1" + path, data=data, method=method,
                                     headers=h)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def call_json(self, method, path, body=None, **kw):
        """(status, parsed JSON or None) of the same call."""
        st, text = self.call(method, path, body, **kw)
        return st, json.loads(text) if text else None

    def get(self, path, status=200):
        st, body = self.call_json("GET", path)
        if st != status:
            self.checks.fail("GET %s: status %d, expected %d: %s" % (path, st, status, body))
        return body

    def login(self, email, password):
        st, body = self.call_json("POST", "/login", {"email": email, "password": password})
        if st != 200:
            print("FAIL: login %s: %s %s" % (email, st, body), file=sys.stderr)
            sys.exit(1)
        self.csrf = body["csrf"]
        return body
