#!/usr/bin/env python3
"""fake_telegram — a local stand-in for the Telegram Bot API, for tests.

Speaks the documented wire format (reference/telegram-and-pix.md §1):

    GET|POST /bot<TOKEN>/<method>     params as query string, form-urlencoded,
                                      JSON or multipart/form-data body; method
                                      names are case-insensitive
    -> 200 {"ok":true,"result":...}
    -> 401 {"ok":false,"error_code":401,"description":"Unauthorized"} (unknown token)
    -> 404 {"ok":false,"error_code":404,"description":"Not Found"}    (unknown method)
    -> 4xx {"ok":false,"error_code":N,"description":"Bad Request: ..."} (bad parameters)

Only tokens registered through the control API are accepted. Methods:

    getMe
    getUpdates        per-bot queue; offset confirms (drops) older updates, a
                      negative offset keeps the last |offset|; limit 1-100;
                      timeout (long poll, capped at 50 s) returns at once when
                      an update is injected; allowed_updates is remembered per
                      bot (default: every type but chat_member,
                      message_reaction, message_reaction_count) and updates of
                      other types are dropped; 409 while a webhook is set, and
                      409 "terminated by other getUpdates request" to a poll
                      that a newer poll of the same bot replaced
    setWebhook        url (http or https: the fake delivers to local servers),
                      secret_token ([A-Za-z0-9_-]{1,256}), max_connections
                      1-100 (40), allowed_updates, drop_pending_updates. Queued
                      updates are then POSTed to url as JSON with header
                      X-Telegram-Bot-Api-Secret-Token; a non-2xx answer, a
                      dropped connection or no answer within --webhook-timeout
                      is a failure: first retry at once, then 2, 4, 8 ... s
                      capped at a random 60-120 s (or the answer's Retry-After,
                      <= 3600 s), times --backoff-scale. One update at a time
                      per chat, in order; chats in parallel up to
                      max_connections.
    deleteWebhook     drop_pending_updates
    getWebhookInfo    url, pending_update_count, last_error_date/message, ...
    sendMessage       chat_id (integer or "@name"), text 1-4096 chars after
                      entity parsing, parse_mode HTML (checked: Telegram's tags
                      only, balanced, <>& escaped) | MarkdownV2 | Markdown,
                      reply_markup (object or JSON text) with inline buttons:
                      text and exactly one of callback_data (1-64 bytes) / url
                      -> Message, message_id increasing per bot
    sendPhoto         photo = multipart upload (PNG or JPEG by magic bytes,
                      <= 10 MB, width+height <= 10000, ratio <= 20), a file_id
                      this bot got before, or an http(s) URL (not fetched);
                      caption <= 1024 chars after entity parsing -> Message
                      with photo [small, large] PhotoSizes (new file_ids)
    answerCallbackQuery  callback_query_id, text <= 200 chars
    createChatInviteLink chat_id (declared with /_fake/chats, the bot an admin),
                      name <= 32, expire_date, member_limit 1-99999,
                      creates_join_request (not with member_limit)
                      -> ChatInviteLink https://t.me/+<random>
    revokeChatInviteLink chat_id, invite_link -> ChatInviteLink, is_revoked

Control API (for the tests, never sent by rastro):

    GET  /_fake/health            -> {"ok":true}
    GET  /_fake/stats             -> {"connections": TCP connections accepted so far,
                                  "calls": Bot API calls so far, "bots": N}
    POST /_fake/bots              JSON {"token":"123:abc","username":"my_bot","id":123}
                                  registers a bot ("id" defaults to the token's
                                  prefix). A new token for a known id replaces the
                                  old one (which then gets 401, like /revoke in
                                  @BotFather); the bot's queue and webhook stay.
                                  {"token":..., "revoke":true} unregisters a token.
    GET  /_fake/calls             -> [{"method":"getMe","bot_id":123,"http":"GET",
                                       "params":{...},"status":200}, ...]
                                  every Bot API call so far; the token is reduced to
                                  its bot id (the part before ':'); uploads and
                                  secret_token are summarised, never echoed
    POST /_fake/reset             forgets calls, sent and deliveries (bots, queues,
                                  chats and links stay)
    POST /_fake/updates           {"token" or "bot_id", "update": {...}} or
                                  "updates": [...]: queues updates (update_id given
                                  or assigned, increasing per bot) -> {"ok":true,
                                  "update_ids":[...]}. Wakes the bot's long poll or
                                  its webhook delivery at once.
    GET  /_fake/updates?bot_id=N  -> {"pending":[update ids], "last_offset":...,
                                  "delivered":N, "polls":N (getUpdates started),
                                  "waiting":N (long polls waiting now),
                                  "webhook":url|null}
    GET  /_fake/updates           -> {"<bot id>": the same, ...} for every bot
    POST /_fake/faults            {"method":"sendMessage", "status":429,
                                  "retry_after":2, "count":N, "bot_id":opt} (status
                                  an HTTP code, or "hang" with "seconds", "close" to
                                  drop the connection, "garbage" for a 200 that is
                                  not JSON, or 200 with "body": any JSON to answer);
                                  method "*" = any; count -1 = forever;
                                  a 429 has parameters.retry_after and a Retry-After
                                  header ("parameters":false: the header only);
                                  {"faults":[...]} adds several, {"clear":true} clears
    GET  /_fake/faults            -> the faults still armed
    POST /_fake/chats             {"chat_id":-100..., "admins":[bot ids],
                                  "blocked":[bot ids], "title":"..."} declares or
                                  updates a chat; sendMessage/sendPhoto to a chat
                                  that blocked the bot get 403
    POST /_fake/join              {"chat_id","user_id","invite_link"} a user joins
                                  with the link (must be live, not revoked, not
                                  expired, under member_limit): queues a chat_member
                                  update to the bot that made the link -> {"ok":true,
                                  "update_id":N}; else 400 {"ok":false,"error":...}
    POST /_fake/leave             {"chat_id","user_id"}: the member leaves (a link's
                                  slot reopens); queues a chat_member update
    GET  /_fake/links             -> every invite link with its state and members
    GET  /_fake/sent              -> every successful sendMessage, sendPhoto,
                                  answerCallbackQuery and createChatInviteLink, in
                                  order: {"seq","method","bot_id","chat_id","text"
                                  (as sent),"text_plain" (entities parsed),"caption",
                                  "parse_mode","reply_markup","message_id",
                                  "photo_sha256","photo_size","photo_file_id",
                                  "callback_query_id","invite_link","mono","wall"}
                                  (mono = time.monotonic(), wall = time.time(), at
                                  the call)
                                  ?after=SEQ: only the entries after that seq
    DELETE /_fake/sent            clears that list
    GET  /_fake/deliveries        -> every webhook delivery attempt {"bot_id",
                                  "update_id","status" (null: no answer),
                                  "attempt","mono","wall"}

The token is never printed: the access log shows /bot<id>:***/<method>
(--quiet turns the access log off). Handles ~1,000 bots long-polling at once:
one daemon thread per connection, each poll waiting on its bot's condition.
"""

import argparse
import hashlib
import html
import json
import random
import re
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# "/bot<TOKEN>" at the start of a request path (after the method and a space).
TOKEN_IN_PATH = re.compile(r"(^|\s)/bot([^/\s]*)")

POLL_TIMEOUT_MAX = 50
DEFAULT_EXCLUDED = {"chat_member", "message_reaction", "message_reaction_count"}
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
PHOTO_MAX = 10 * 1024 * 1024
# Tags Telegram's HTML parse mode knows.
HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
             "tg-spoiler", "a", "tg-emoji", "code", "pre", "blockquote"}
HTML_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(\s[^<>]*)?>"
                        r"|&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|lt|gt|amp|quot);"
                        r"|[<>&]")
BUTTON_KINDS = ("callback_data", "url", "switch_inline_query",
                "switch_inline_query_current_chat", "web_app", "login_url", "pay",
                "callback_game", "copy_text")
UPDATE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post",
                "callback_query", "my_chat_member", "chat_member", "chat_join_request",
                "message_reaction", "message_reaction_count", "inline_query",
                "chosen_inline_result", "shipping_query", "pre_checkout_query", "poll",
                "poll_answer", "chat_boost", "removed_chat_boost")


class ApiError(Exception):
    """A Bot API error: becomes {"ok":false,"error_code":code,...}."""

    def __init__(self, code, description, parameters=None, headers=None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters
        self.headers = headers or {}


class Upload:
    """A file part of a multipart/form-data body."""

    def __init__(self, filename, ctype, data):
        self.filename = filename
        self.ctype = ctype
        self.data = data

    def summary(self):
        return {"upload": self.filename, "size": len(self.data),
                "sha256": hashlib.sha256(self.data).hexdigest()}


class Bot:
    """One registered bot: its identity, update queue and webhook."""

    def __init__(self, state, bid, token, username, first_name):
        self.id = bid
        self.token = token
        self.username = username
        self.first_name = first_name
        self.cond = threading.Condition(state.lock)   # wakes polls and the webhook sender
        self.queue = []             # pending updates (dicts), in update_id order
        # Rising with the clock (like Telegram's after a quiet spell is random,
        # but never below what a client confirmed before a restart of the fake).
        self.next_update_id = int(time.time() * 1000) % 10**12 + random.randint(0, 999)
        self.next_message_id = 0
        self.poll_gen = 0           # a newer getUpdates replaces the waiting one
        self.allowed_updates = None  # None or [] = the default set
        self.webhook = None         # {"url","secret_token","max_connections",...}
        self.webhook_gen = 0        # bumps on set/delete: the old sender thread stops
        self.last_error = None      # (unix time, message) of the last failed delivery
        self.last_offset = None
        self.delivered = 0
        self.polls = 0
        self.waiting = 0            # long polls waiting right now

    def user(self):
        return {"id": self.id, "is_bot": True, "first_name": self.first_name,
                "username": self.username}

    def allows(self, update):
        kind = update_kind(update)
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in DEFAULT_EXCLUDED

    def confirm(self, offset):
        """getUpdates offset semantics: confirm (drop) the updates before it."""
        if offset > 0:
            self.queue = [u for u in self.queue if u["update_id"] >= offset]
        elif offset < 0:
            self.queue = self.queue[offset:]

    def take(self, limit):
        """Drops updates of types not allowed; returns up to LIMIT of the rest."""
        self.queue = [u for u in self.queue if self.allows(u)]
        return self.queue[:limit]


class State:
    """Everything the fake knows; shared by the handler threads under a lock."""

    def __init__(self, webhook_timeout, backoff_scale):
        self.lock = threading.Lock()
        self.bots = {}          # token -> Bot
        self.by_id = {}         # bot id -> Bot
        self.calls = []         # recorded Bot API calls (no tokens)
        self.sent = []          # successful sends, in order
        self.deliveries = []    # webhook delivery attempts
        self.faults = []        # armed faults
        self.chats = {}         # chat id -> {"admins","blocked","members","title"}
        self.links = {}         # invite link -> its state
        self.files = {}         # file_id -> {"bot_id","sha256","size","width","height"}
        self.seq = 0
        self.webhook_timeout = webhook_timeout
        self.backoff_scale = backoff_scale
        # Webhook deliveries never go through a proxy from the environment.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def bot_by(self, spec):
        """The Bot named by spec's "token" or "bot_id" (call under the lock)."""
        if isinstance(spec.get("token"), str):
            return self.bots.get(spec["token"])
        if "bot_id" in spec:
            return self.by_id.get(spec["bot_id"])
        return None

    def inject(self, bot, update):
        """Queues UPDATE for BOT (call under the lock). Returns its update_id."""
        update = dict(update)
        uid = update.get("update_id")
        if isinstance(uid, int) and not isinstance(uid, bool):
            bot.next_update_id = max(bot.next_update_id, uid + 1)
        else:
            uid = bot.next_update_id
            bot.next_update_id += 1
            update["update_id"] = uid
        bot.queue.append(update)
        bot.queue.sort(key=lambda u: u["update_id"])
        bot.cond.notify_all()
        return uid

    def record_sent(self, entry):
        """Appends a successful send (call under the lock)."""
        self.seq += 1
        entry.update({"seq": self.seq, "mono": time.monotonic(), "wall": time.time()})
        self.sent.append(entry)


def bot_id_of(token):
    """The part of TOKEN before ':' as an int, or None (never the secret)."""
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def update_kind(update):
    for k in UPDATE_KINDS:
        if k in update:
            return k
    return None


def update_chat(update):
    """The chat an update belongs to (its webhook ordering key), or None."""
    for k in ("message", "edited_message", "channel_post", "edited_channel_post",
              "my_chat_member", "chat_member", "chat_join_request", "message_reaction"):
        part = update.get(k)
        if isinstance(part, dict) and isinstance(part.get("chat"), dict):
            return part["chat"].get("id")
    cb = update.get("callback_query")
    if isinstance(cb, dict):
        msg = cb.get("message")
        if isinstance(msg, dict) and isinstance(msg.get("chat"), dict):
            return msg["chat"].get("id")
        if isinstance(cb.get("from"), dict):
            return cb["from"].get("id")
    return None


# ---- parameters ---------------------------------------------------------------

def int_param(params, name, default=None, required=False):
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise ApiError(400, "Bad Request: %s is empty" % name)
        return default
    if isinstance(v, bool):
        raise ApiError(400, "Bad Request: %s must be a number" % name)
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]{1,20}", v.strip()):
        return int(v)
    raise ApiError(400, "Bad Request: %s must be a number" % name)


def bool_param(params, name):
    v = params.get(name)
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return v.lower() in ("true", "1")
    return bool(v)


def json_param(params, name):
    """A parameter that may arrive as JSON text (form/multipart) or as JSON (body)."""
    v = params.get(name)
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse %s JSON" % name)
    return v


def chat_id_param(params):
    v = params.get("chat_id")
    if v is None or v == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    if isinstance(v, bool):
        raise ApiError(400, "Bad Request: chat not found")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        if re.fullmatch(r"-?[0-9]{1,20}", v):
            return int(v)
        if re.fullmatch(r"@[A-Za-z][A-Za-z0-9_]{3,31}", v):
            return v
    raise ApiError(400, "Bad Request: chat not found")


def html_to_text(s):
    """The plain text of Telegram-HTML S; ApiError as Telegram words it when malformed."""
    out, stack, pos = [], [], 0
    for m in HTML_TOKEN.finditer(s):
        out.append(s[pos:m.start()])
        pos = m.end()
        where = len(s[:m.start()].encode("utf-8"))
        if m.group(2):
            name = m.group(2).lower()
            if name not in HTML_TAGS:
                raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag "
                               "\"%s\" at byte offset %d" % (name, where))
            if m.group(1):
                if not stack or stack[-1] != name:
                    raise ApiError(400, "Bad Request: can't parse entities: Unmatched end tag "
                                   "at byte offset %d, expected \"</%s>\", found \"</%s>\""
                                   % (where, stack[-1] if stack else "", name))
                stack.pop()
            else:
                stack.append(name)
        elif m.group(4):
            out.append(html.unescape(m.group(0)))
        else:
            raise ApiError(400, "Bad Request: can't parse entities: Unescaped \"%s\" at byte "
                           "offset %d" % (m.group(0), where))
    out.append(s[pos:])
    if stack:
        raise ApiError(400, "Bad Request: can't parse entities: Can't find end tag "
                       "corresponding to start tag \"%s\"" % stack[-1])
    return "".join(out)


def visible_text(params, name, limit, allow_empty):
    """PARAMS[NAME] after entity parsing for the request's parse_mode, length-checked
    (the plain text, as a Message shows it)."""
    raw = params.get(name)
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise ApiError(400, "Bad Request: %s must be a string" % name)
    mode = params.get("parse_mode")
    if mode in (None, ""):
        text = raw
    elif mode == "HTML":
        text = html_to_text(raw)
    elif mode in ("MarkdownV2", "Markdown"):
        text = raw
    else:
        raise ApiError(400, "Bad Request: unsupported parse_mode")
    if not text.strip() and not allow_empty:
        raise ApiError(400, "Bad Request: message text is empty")
    if len(text) > limit:
        raise ApiError(400, "Bad Request: message %s too long"
                       % ("is" if name == "text" else "caption is"))
    return text


def check_markup(params):
    """reply_markup parsed and checked, or None."""
    if params.get("reply_markup") in (None, ""):
        return None
    try:
        rm = json_param(params, "reply_markup")
    except ApiError:
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if not isinstance(rm, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in rm:
        rows = rm["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ApiError(400, "Bad Request: field \"inline_keyboard\" of the "
                           "InlineKeyboardMarkup must be an Array of Arrays")
        for row in rows:
            for b in row:
                if not isinstance(b, dict) or not isinstance(b.get("text"), str) \
                        or not b["text"]:
                    raise ApiError(400, "Bad Request: can't parse inline keyboard button: "
                                   "Field \"text\" must be of type String")
                kinds = [k for k in BUTTON_KINDS if k in b]
                if len(kinds) != 1:
                    raise ApiError(400, "Bad Request: can't parse inline keyboard button: "
                                   "Text buttons are unallowed in the inline keyboard")
                if "callback_data" in b:
                    d = b["callback_data"]
                    if not isinstance(d, str) or not 1 <= len(d.encode("utf-8")) <= 64:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if "url" in b:
                    u = b["url"]
                    if not isinstance(u, str) or not re.match(r"(https?|tg)://\S+$", u):
                        raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
    return rm


def parse_multipart(body, ctype_header):
    """Fields of a multipart/form-data BODY: str for text parts, Upload for files."""
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', ctype_header)
    if not m:
        raise ValueError("multipart body without a boundary")
    boundary = (m.group(1) or m.group(2)).encode("latin-1")
    pieces = (b"\r\n" + body).split(b"\r\n--" + boundary)
    if len(pieces) < 2:
        raise ValueError("no multipart boundary in the body")
    fields = {}
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            return fields           # the closing delimiter
        piece = piece.lstrip(b" \t")
        if not piece.startswith(b"\r\n"):
            raise ValueError("malformed multipart delimiter line")
        head, sep, content = piece[2:].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without a blank line after its headers")
        headers = {}
        for line in head.split(b"\r\n"):
            k, _, v = line.decode("utf-8", "replace").partition(":")
            headers[k.strip().lower()] = v.strip()
        disp = headers.get("content-disposition", "")

        def disp_param(key):
            pm = re.search(r'(?:^|;)\s*%s\s*=\s*(?:"([^"]*)"|([^;\s]*))' % key, disp)
            return None if pm is None else (pm.group(1) if pm.group(1) is not None
                                            else pm.group(2))
        name = disp_param("name")
        if not disp.lower().startswith("form-data") or name is None:
            raise ValueError("multipart part without form-data name")
        filename = disp_param("filename")
        if filename is not None:
            fields[name] = Upload(filename, headers.get("content-type"), content)
        else:
            fields[name] = content.decode("utf-8")
    raise ValueError("multipart body without a closing boundary")


def image_size(data):
    """(kind, width, height) of PNG/JPEG bytes; ApiError when not an image we take."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        w, h = struct.unpack(">II", data[16:24])
        if not w or not h:
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        return "png", w, h
    if data[:3] == b"\xff\xd8\xff":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                break
            marker = data[i + 1]
            if marker == 0xFF:
                i += 1
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "jpeg", w, h
            i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        return "jpeg", 0, 0         # no SOF found: taken, size unknown
    raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")


def new_file_id():
    return "AgACAgEAAxkDAAI" + secrets.token_urlsafe(48)


# ---- Bot API methods: (state, bot, params) -> result ---------------------------

def m_getme(state, bot, params):
    return {
        "id": bot.id,
        "is_bot": True,
        "first_name": bot.first_name,
        "username": bot.username,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def m_getupdates(state, bot, params):
    offset = int_param(params, "offset", 0)
    limit = min(max(int_param(params, "limit", 100), 1), 100)
    timeout = min(max(int_param(params, "timeout", 0), 0), POLL_TIMEOUT_MAX)
    allowed = json_param(params, "allowed_updates")
    if allowed is not None and (not isinstance(allowed, list)
                                or not all(isinstance(a, str) for a in allowed)):
        raise ApiError(400, "Bad Request: can't parse allowed_updates")
    deadline = time.monotonic() + timeout
    with state.lock:
        if bot.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is "
                           "active; use deleteWebhook to delete the webhook first")
        if allowed is not None:
            bot.allowed_updates = allowed
        bot.poll_gen += 1
        gen = bot.poll_gen
        bot.cond.notify_all()       # an older poll of this bot ends with 409
        bot.polls += 1
        bot.last_offset = offset
        bot.confirm(offset)
        bot.waiting += 1
        try:
            while True:
                ready = bot.take(limit)
                left = deadline - time.monotonic()
                if ready or left <= 0:
                    break
                bot.cond.wait(left)
                if bot.poll_gen != gen:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                   "make sure that only one bot instance is running")
                if state.bots.get(bot.token) is not bot:
                    raise ApiError(401, "Unauthorized")
                if bot.webhook:
                    raise ApiError(409, "Conflict: can't use getUpdates method while webhook "
                                   "is active; use deleteWebhook to delete the webhook first")
        finally:
            bot.waiting -= 1
        bot.delivered += len(ready)
        return list(ready)


def m_setwebhook(state, bot, params):
    url = params.get("url") or ""
    if not isinstance(url, str):
        raise ApiError(400, "Bad Request: bad webhook: invalid URL")
    if url == "":
        return m_deletewebhook(state, bot, params)
    if not re.match(r"https?://[^/\s]+", url):
        raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for "
                       "webhook")
    secret = params.get("secret_token")
    if secret is not None and (not isinstance(secret, str)
                               or not SECRET_TOKEN.fullmatch(secret)):
        raise ApiError(400, "Bad Request: secret token contains unallowed characters")
    maxc = int_param(params, "max_connections", 40)
    if not 1 <= maxc <= 100:
        raise ApiError(400, "Bad Request: bad webhook: max_connections must be 1-100")
    allowed = json_param(params, "allowed_updates")
    if allowed is not None and (not isinstance(allowed, list)
                                or not all(isinstance(a, str) for a in allowed)):
        raise ApiError(400, "Bad Request: can't parse allowed_updates")
    with state.lock:
        if allowed is not None:
            bot.allowed_updates = allowed
        if bool_param(params, "drop_pending_updates"):
            bot.queue.clear()
        bot.webhook = {"url": url, "secret_token": secret, "max_connections": maxc}
        bot.webhook_gen += 1
        bot.last_error = None
        gen = bot.webhook_gen
        bot.cond.notify_all()       # a waiting long poll ends with 409; the old sender stops
    threading.Thread(target=webhook_sender, args=(state, bot, gen), daemon=True).start()
    return True


def m_deletewebhook(state, bot, params):
    with state.lock:
        bot.webhook = None
        bot.webhook_gen += 1
        if bool_param(params, "drop_pending_updates"):
            bot.queue.clear()
        bot.cond.notify_all()
    return True


def m_getwebhookinfo(state, bot, params):
    with state.lock:
        info = {"url": bot.webhook["url"] if bot.webhook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(bot.queue)}
        if bot.webhook:
            info["max_connections"] = bot.webhook["max_connections"]
            if bot.allowed_updates:
                info["allowed_updates"] = list(bot.allowed_updates)
        if bot.last_error:
            info["last_error_date"] = int(bot.last_error[0])
            info["last_error_message"] = bot.last_error[1]
    return info


def check_chat_allows(state, bot, chat_id):
    """403 when the chat blocked the bot (call under the lock)."""
    chat = state.chats.get(chat_id)
    if chat and bot.id in chat["blocked"]:
        raise ApiError(403, "Forbidden: bot was blocked by the user")


def new_message(state, bot, chat_id, **fields):
    """A Message from BOT in CHAT_ID (call under the lock)."""
    bot.next_message_id += 1
    if isinstance(chat_id, int):
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
    else:
        chat = {"id": -1000000000000 - (abs(hash(chat_id)) % 10 ** 9), "type": "channel",
                "username": chat_id[1:]}
    msg = {"message_id": bot.next_message_id, "from": bot.user(), "chat": chat,
           "date": int(time.time())}
    msg.update({k: v for k, v in fields.items() if v is not None})
    return msg


def m_sendmessage(state, bot, params):
    chat_id = chat_id_param(params)
    if not isinstance(params.get("text"), str) or params["text"] == "":
        raise ApiError(400, "Bad Request: message text is empty")
    plain = visible_text(params, "text", 4096, allow_empty=False)
    markup = check_markup(params)
    with state.lock:
        check_chat_allows(state, bot, chat_id)
        msg = new_message(state, bot, chat_id, text=plain, reply_markup=markup)
        state.record_sent({"method": "sendMessage", "bot_id": bot.id, "chat_id": chat_id,
                           "text": params["text"], "text_plain": plain,
                           "parse_mode": params.get("parse_mode"), "reply_markup": markup,
                           "message_id": msg["message_id"]})
    return msg


def m_sendphoto(state, bot, params):
    chat_id = chat_id_param(params)
    caption = params.get("caption")
    plain_caption = None
    if caption is not None:
        plain_caption = visible_text(params, "caption", 1024, allow_empty=True)
    markup = check_markup(params)
    photo = params.get("photo")
    entry = {"method": "sendPhoto", "bot_id": bot.id, "chat_id": chat_id, "caption": caption,
             "parse_mode": params.get("parse_mode"), "reply_markup": markup}
    if isinstance(photo, Upload):
        if len(photo.data) > PHOTO_MAX:
            raise ApiError(400, "Bad Request: file is too big")
        kind, w, h = image_size(photo.data)
        if w and h and (w + h > 10000 or max(w, h) > 20 * min(w, h)):
            raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        w, h = (w or 320), (h or 320)
        info = {"bot_id": bot.id, "sha256": hashlib.sha256(photo.data).hexdigest(),
                "size": len(photo.data), "width": w, "height": h}
        source = "upload"
    elif isinstance(photo, str) and photo:
        if re.match(r"https?://", photo):
            info = {"bot_id": bot.id, "sha256": None, "size": None, "width": 800,
                    "height": 800}
            source = "url"
        else:
            with state.lock:
                info = state.files.get(photo)
            if info is None or info["bot_id"] != bot.id:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            source = "file_id"
    else:
        raise ApiError(400, "Bad Request: there is no photo in the request")
    scale = min(1.0, 90.0 / max(info["width"], info["height"]))
    small = {"bot_id": bot.id, "sha256": None, "size": None,
             "width": max(1, int(info["width"] * scale)),
             "height": max(1, int(info["height"] * scale))}
    large_id = photo if source == "file_id" else new_file_id()
    small_id = new_file_id()
    sizes = [{"file_id": small_id, "file_unique_id": secrets.token_urlsafe(12),
              "width": small["width"], "height": small["height"], "file_size": 1024},
             {"file_id": large_id, "file_unique_id": secrets.token_urlsafe(12),
              "width": info["width"], "height": info["height"],
              "file_size": info["size"] or 0}]
    with state.lock:
        check_chat_allows(state, bot, chat_id)
        state.files[small_id] = small
        state.files[large_id] = info
        msg = new_message(state, bot, chat_id, photo=sizes, caption=plain_caption,
                          reply_markup=markup)
        entry.update({"photo_sha256": info["sha256"], "photo_size": info["size"],
                      "photo_file_id": large_id, "photo_source": source,
                      "message_id": msg["message_id"]})
        state.record_sent(entry)
    return msg


def m_answercallbackquery(state, bot, params):
    qid = params.get("callback_query_id")
    if not isinstance(qid, str) or not qid:
        raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                       "query ID is invalid")
    text = params.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > 200):
        raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
    with state.lock:
        state.record_sent({"method": "answerCallbackQuery", "bot_id": bot.id,
                           "callback_query_id": qid, "text": text,
                           "show_alert": bool_param(params, "show_alert")})
    return True


def link_object(bot, link, st):
    obj = {"invite_link": link, "creator": bot.user(),
           "creates_join_request": st["creates_join_request"], "is_primary": False,
           "is_revoked": st["is_revoked"]}
    for k in ("name", "expire_date", "member_limit"):
        if st.get(k) is not None:
            obj[k] = st[k]
    return obj


def admin_chat(state, bot, chat_id):
    """The declared chat CHAT_ID where BOT is an admin (call under the lock)."""
    chat = state.chats.get(chat_id)
    if chat is None:
        raise ApiError(400, "Bad Request: chat not found")
    if bot.id not in chat["admins"]:
        raise ApiError(400, "Bad Request: not enough rights to manage chat invite links")
    return chat


def m_createchatinvitelink(state, bot, params):
    chat_id = chat_id_param(params)
    name = params.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 32):
        raise ApiError(400, "Bad Request: invite link name is too long")
    expire = int_param(params, "expire_date")
    if expire is not None and expire != 0 and expire < time.time():
        raise ApiError(400, "Bad Request: EXPIRE_DATE_INVALID")
    limit = int_param(params, "member_limit")
    if limit is not None and not 1 <= limit <= 99999:
        raise ApiError(400, "Bad Request: USAGE_LIMIT_INVALID")
    join_request = bool_param(params, "creates_join_request")
    if join_request and limit is not None:
        raise ApiError(400, "Bad Request: member_limit can't be specified for links "
                       "requiring administrator approval")
    with state.lock:
        admin_chat(state, bot, chat_id)
        link = "https://t.me/+" + secrets.token_urlsafe(12)
        st = {"bot_id": bot.id, "chat_id": chat_id, "name": name,
              "expire_date": expire or None, "member_limit": limit,
              "creates_join_request": join_request, "is_revoked": False, "members": [],
              "created": time.time()}
        state.links[link] = st
        state.record_sent({"method": "createChatInviteLink", "bot_id": bot.id,
                           "chat_id": chat_id, "invite_link": link, "name": name,
                           "expire_date": expire, "member_limit": limit})
        return link_object(bot, link, st)


def m_revokechatinvitelink(state, bot, params):
    chat_id = chat_id_param(params)
    link = params.get("invite_link")
    with state.lock:
        admin_chat(state, bot, chat_id)
        st = state.links.get(link) if isinstance(link, str) else None
        if st is None or st["chat_id"] != chat_id:
            raise ApiError(400, "Bad Request: INVITE_HASH_EXPIRED")
        st["is_revoked"] = True
        return link_object(bot, link, st)


METHODS = {
    "getme": m_getme,
    "getupdates": m_getupdates,
    "setwebhook": m_setwebhook,
    "deletewebhook": m_deletewebhook,
    "getwebhookinfo": m_getwebhookinfo,
    "sendmessage": m_sendmessage,
    "sendphoto": m_sendphoto,
    "answercallbackquery": m_answercallbackquery,
    "createchatinvitelink": m_createchatinvitelink,
    "revokechatinvitelink": m_revokechatinvitelink,
}


# ---- webhook delivery -------------------------------------------------------------

class Sender:
    """The webhook sender of one bot for one setWebhook (until it changes)."""

    def __init__(self, state, bot, gen):
        self.state, self.bot, self.gen = state, bot, gen
        self.inflight = set()       # update ids being POSTed
        self.busy_chats = set()     # chats with a POST in flight
        self.retry = {}             # chat key -> {"attempts", "at" (monotonic)}

    def live(self):
        return self.bot.webhook is not None and self.bot.webhook_gen == self.gen

    def run(self):
        bot = self.bot
        with self.state.lock:
            while self.live():
                now = time.monotonic()
                wake = None
                seen = set()
                bot.queue = [u for u in bot.queue if bot.allows(u)]
                for u in list(bot.queue):
                    uid = u["update_id"]
                    key = update_chat(u)
                    key = ("update", uid) if key is None else ("chat", key)
                    if key in seen:
                        continue    # an earlier update of this chat goes first
                    seen.add(key)
                    if uid in self.inflight or key in self.busy_chats:
                        continue
                    r = self.retry.get(key)
                    if r and r["at"] > now:
                        wake = r["at"] if wake is None else min(wake, r["at"])
                        continue
                    if len(self.inflight) >= bot.webhook["max_connections"]:
                        break
                    self.inflight.add(uid)
                    self.busy_chats.add(key)
                    attempt = (r["attempts"] if r else 0) + 1
                    threading.Thread(target=self.deliver, daemon=True,
                                     args=(u, key, dict(bot.webhook), attempt)).start()
                bot.cond.wait(None if wake is None else max(0.0, wake - now))

    def deliver(self, update, key, webhook, attempt):
        body = json.dumps(update).encode()
        headers = {"Content-Type": "application/json"}
        if webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook["secret_token"]
        req = urllib.request.Request(webhook["url"], data=body, headers=headers, method="POST")
        status, retry_after, error = None, None, None
        try:
            with self.state.opener.open(req, timeout=self.state.webhook_timeout) as resp:
                status = resp.status
                resp.read()
        except urllib.error.HTTPError as e:
            status = e.code
            retry_after = e.headers.get("Retry-After")
            error = "Wrong response from the webhook: %d %s" % (e.code, e.reason)
        except (OSError, ValueError) as e:
            error = "Connection failed: %s" % (getattr(e, "reason", None) or e)
        bot = self.bot
        with self.state.lock:
            self.inflight.discard(update["update_id"])
            self.busy_chats.discard(key)
            self.state.deliveries.append({"bot_id": bot.id, "update_id": update["update_id"],
                                          "status": status, "attempt": attempt,
                                          "mono": time.monotonic(), "wall": time.time()})
            if status is not None and 200 <= status < 300:
                bot.queue = [u for u in bot.queue if u["update_id"] != update["update_id"]]
                bot.delivered += 1
                self.retry.pop(key, None)
            else:
                r = self.retry.setdefault(key, {"attempts": 0})
                r["attempts"] += 1
                if retry_after and retry_after.strip().isdigit():
                    delay = min(int(retry_after), 3600)
                elif r["attempts"] == 1:
                    delay = 0       # the first retry is immediate
                else:
                    delay = min(2 ** (r["attempts"] - 1), random.uniform(60, 120))
                r["at"] = time.monotonic() + delay * self.state.backoff_scale
                bot.last_error = (time.time(), error or "Wrong response from the webhook")
            bot.cond.notify_all()


def webhook_sender(state, bot, gen):
    Sender(state, bot, gen).run()


# ---- HTTP plumbing ------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    server_version = "fake-telegram/1"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the second
    # waits for the client's delayed ACK (~40 ms per keep-alive reply).
    disable_nagle_algorithm = True

    # -- plumbing --
    @property
    def state(self):
        return self.server.state

    def log_message(self, fmt, *args):
        if self.server.quiet:
            return
        # The request line carries the token: mask it before logging.
        def mask(m):
            bid = bot_id_of(m.group(2))
            return m.group(1) + "/bot" + (("%s:***" % bid) if bid is not None else "<token>")
        line = TOKEN_IN_PATH.sub(mask, fmt % args)
        sys.stderr.write("fake_telegram: %s\n" % line)

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_body(status, body, "application/json", headers)

    def send_body(self, status, body, ctype, headers=None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True    # the client gave up (e.g. its timeout)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def parse_params(self, query, body):
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        ctype_header = self.headers.get("Content-Type") or ""
        ctype = ctype_header.split(";")[0].strip().lower()
        if body:
            if ctype == "application/json":
                data = json.loads(body.decode("utf-8"))
                if not isinstance(data, dict):
                    raise ApiError(400, "Bad Request: JSON object expected")
                params.update(data)
            elif ctype == "application/x-www-form-urlencoded":
                params.update({k: v[-1] for k, v in
                               urllib.parse.parse_qs(body.decode("utf-8")).items()})
            elif ctype == "multipart/form-data":
                params.update(parse_multipart(body, ctype_header))
            else:
                raise ApiError(400, "Bad Request: unsupported Content-Type %s" % ctype)
        return params

    # -- dispatch --
    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self.read_body()
        except (ValueError, OSError):
            return self.send_json(400, {"ok": False, "error_code": 400,
                                        "description": "Bad Request"})
        if url.path.startswith("/_fake/"):
            return self.control(url.path[len("/_fake/"):], url.query, body)
        if url.path.startswith("/bot"):
            return self.bot_api(url, body)
        self.send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def take_fault(self, method, bot):
        """The first armed fault matching this call, consumed, or None."""
        with self.state.lock:
            for f in self.state.faults:
                if f["method"] not in ("*", method.lower()):
                    continue
                if f.get("bot_id") is not None and f["bot_id"] != bot.id:
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                fault = dict(f)
                self.state.faults = [x for x in self.state.faults if x["count"] != 0]
                return fault
        return None

    def bot_api(self, url, body):
        rest = url.path[len("/bot"):]
        token, _, method = rest.partition("/")
        method = urllib.parse.unquote(method)
        call = {"method": method, "bot_id": bot_id_of(token), "http": self.command}
        headers = {}
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
            call["params"] = summarise(params)
            fault = self.take_fault(method, bot)
            if fault:
                status = fault["status"]
                if status in ("hang", "close"):
                    if status == "hang":
                        time.sleep(fault.get("seconds", 3600))
                    call["status"] = status
                    with self.state.lock:
                        self.state.calls.append(call)
                    self.close_connection = True
                    return
                if status == "garbage" or status == 200:
                    call["status"] = 200
                    with self.state.lock:
                        self.state.calls.append(call)
                    if status == 200:
                        return self.send_json(200, fault.get("body"))
                    return self.send_body(200, b"<html>oops</html>", "text/html")
                raise fault_error(fault)
            result = handler(self.state, bot, params)
            status, reply = 200, {"ok": True, "result": result}
        except ApiError as e:
            reply = {"ok": False, "error_code": e.code, "description": e.description}
            if e.parameters:
                reply["parameters"] = e.parameters
            status = e.code
            headers = e.headers
        call["status"] = status
        with self.state.lock:
            self.state.calls.append(call)
        self.send_json(status, reply, headers)

    def control(self, what, query, body):
        st = self.state
        cmd = self.command
        if what == "health" and cmd == "GET":
            return self.send_json(200, {"ok": True})
        if what == "stats" and cmd == "GET":
            with st.lock:
                stats = {"connections": self.server.connections, "calls": len(st.calls),
                         "bots": len(st.by_id)}
            return self.send_json(200, stats)
        if what == "calls" and cmd == "GET":
            with st.lock:
                calls = list(st.calls)
            return self.send_json(200, calls)
        if what == "sent" and cmd == "GET":
            after = urllib.parse.parse_qs(query).get("after", ["0"])[0]
            after = int(after) if after.isdigit() else 0
            with st.lock:
                sent = [e for e in st.sent if e["seq"] > after] if after else list(st.sent)
            return self.send_json(200, sent)
        if what == "sent" and cmd == "DELETE":
            with st.lock:
                st.sent.clear()
            return self.send_json(200, {"ok": True})
        if what == "deliveries" and cmd == "GET":
            with st.lock:
                deliveries = list(st.deliveries)
            return self.send_json(200, deliveries)
        if what == "links" and cmd == "GET":
            with st.lock:
                links = [dict(v, invite_link=k) for k, v in st.links.items()]
            return self.send_json(200, links)
        if what == "faults" and cmd == "GET":
            with st.lock:
                faults = list(st.faults)
            return self.send_json(200, faults)
        if what == "updates" and cmd == "GET":
            q = urllib.parse.parse_qs(query)
            with st.lock:
                if "bot_id" not in q:
                    return self.send_json(200, {str(b.id): queue_info(b)
                                                for b in st.by_id.values()})
                try:
                    bot = st.by_id.get(int(q["bot_id"][0]))
                except ValueError:
                    bot = None
                if bot is None:
                    return self.send_json(404, {"ok": False, "error": "unknown bot"})
                info = queue_info(bot)
            return self.send_json(200, info)
        if what == "reset" and cmd == "POST":
            with st.lock:
                st.calls.clear()
                st.sent.clear()
                st.deliveries.clear()
            return self.send_json(200, {"ok": True})
        if cmd != "POST":
            return self.send_json(404, {"ok": False, "error": "unknown control endpoint"})
        try:
            spec = json.loads(body.decode("utf-8"))
            if not isinstance(spec, dict):
                raise ValueError("a JSON object is needed")
            handler = CONTROL.get(what)
            if handler is None:
                return self.send_json(404, {"ok": False, "error": "unknown control endpoint"})
            return self.send_json(200, handler(st, spec))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            return self.send_json(400, {"ok": False, "error": str(e)})


def queue_info(bot):
    """What /_fake/updates tells about BOT (call under the lock)."""
    return {"pending": [u["update_id"] for u in bot.queue], "last_offset": bot.last_offset,
            "delivered": bot.delivered, "polls": bot.polls, "waiting": bot.waiting,
            "webhook": bot.webhook["url"] if bot.webhook else None}


def summarise(params):
    """PARAMS for /_fake/calls: uploads summarised, the webhook secret masked."""
    out = {}
    for k, v in params.items():
        if isinstance(v, Upload):
            out[k] = v.summary()
        elif k == "secret_token" and v:
            out[k] = "<%d chars>" % len(v) if isinstance(v, str) else "<set>"
        else:
            out[k] = v
    return out


def fault_error(fault):
    status = int(fault["status"])
    if status == 429:
        ra = int(fault.get("retry_after", 1))
        return ApiError(429, "Too Many Requests: retry after %d" % ra,
                        {"retry_after": ra} if fault.get("parameters", True) else None,
                        {"Retry-After": str(ra)})
    words = {400: "Bad Request: fault injected", 401: "Unauthorized",
             403: "Forbidden: bot was blocked by the user",
             409: "Conflict: terminated by other getUpdates request; make sure that only "
                  "one bot instance is running",
             500: "Internal Server Error", 502: "Bad Gateway"}
    return ApiError(status, fault.get("description") or words.get(status, "Error"))


# ---- control handlers: (state, spec) -> reply ------------------------------------------

def c_bots(st, spec):
    token = spec["token"]
    if not isinstance(token, str):
        raise ValueError("token, username and id are needed")
    with st.lock:
        if spec.get("revoke"):
            bot = st.bots.pop(token, None)
            if bot is not None:
                bot.cond.notify_all()
            return {"ok": True}
    bid = spec.get("id", bot_id_of(token))
    if not isinstance(spec["username"], str) or not isinstance(bid, int):
        raise ValueError("token, username and id are needed")
    with st.lock:
        bot = st.by_id.get(bid)
        if bot is None:
            bot = Bot(st, bid, token, spec["username"], spec.get("first_name", spec["username"]))
            st.by_id[bid] = bot
        elif bot.token != token:
            st.bots.pop(bot.token, None)    # the old token is revoked
            bot.cond.notify_all()
        bot.token = token
        bot.username = spec["username"]
        bot.first_name = spec.get("first_name", spec["username"])
        st.bots[token] = bot
    return {"ok": True}


def c_updates(st, spec):
    updates = spec["updates"] if "updates" in spec else [spec["update"]]
    if not isinstance(updates, list) or not all(isinstance(u, dict) for u in updates):
        raise ValueError("update must be an object (updates a list of objects)")
    with st.lock:
        bot = st.bot_by(spec)
        if bot is None:
            raise ValueError("unknown bot (give a registered token or bot_id)")
        ids = [st.inject(bot, u) for u in updates]
    return {"ok": True, "update_ids": ids}


def c_faults(st, spec):
    with st.lock:
        if spec.get("clear"):
            st.faults.clear()
            return {"ok": True}
    faults = spec["faults"] if "faults" in spec else [spec]
    armed = []
    for f in faults:
        method = f["method"]
        status = f["status"]
        if not isinstance(method, str) or not (
                status in ("hang", "close", "garbage") or (status == 200 and "body" in f)
                or (isinstance(status, int) and 400 <= status <= 599)):
            raise ValueError("a fault needs a method and a status (400-599, hang, close, "
                             "garbage, or 200 with a body)")
        armed.append({"method": method.lower(), "status": status,
                      "retry_after": int(f.get("retry_after", 1)),
                      "seconds": float(f.get("seconds", 3600)),
                      "count": int(f.get("count", 1)), "bot_id": f.get("bot_id"),
                      "parameters": bool(f.get("parameters", True)), "body": f.get("body"),
                      "description": f.get("description")})
    with st.lock:
        st.faults.extend(armed)
    return {"ok": True}


def c_chats(st, spec):
    chat_id = spec["chat_id"]
    if not isinstance(chat_id, int):
        raise ValueError("chat_id must be an integer")
    with st.lock:
        chat = st.chats.setdefault(chat_id, {"admins": set(), "blocked": set(),
                                             "members": set(), "title": "Chat %d" % chat_id})
        if "admins" in spec:
            chat["admins"] = set(spec["admins"])
        if "blocked" in spec:
            chat["blocked"] = set(spec["blocked"])
        if "title" in spec:
            chat["title"] = str(spec["title"])
    return {"ok": True}


def member_update(st, chat_id, user_id, old, new, link_st=None, link=None, first_name=None):
    """A chat_member Update body (call under the lock)."""
    chat = st.chats[chat_id]
    user = {"id": user_id, "is_bot": False, "first_name": first_name or "User%d" % user_id}
    cm = {"chat": {"id": chat_id, "type": "supergroup" if chat_id < 0 else "private",
                   "title": chat["title"]},
          "from": user, "date": int(time.time()),
          "old_chat_member": {"user": user, "status": old},
          "new_chat_member": {"user": user, "status": new}}
    if link:
        cm["invite_link"] = link_object(st.by_id[link_st["bot_id"]], link, link_st)
    return {"chat_member": cm}


def c_join(st, spec):
    chat_id, user_id, link = spec["chat_id"], spec["user_id"], spec["invite_link"]
    if not isinstance(chat_id, int) or not isinstance(user_id, int):
        raise ValueError("chat_id and user_id must be integers")
    with st.lock:
        ls = st.links.get(link)
        if ls is None or ls["chat_id"] != chat_id:
            raise ValueError("INVITE_HASH_INVALID")
        if ls["is_revoked"] or (ls["expire_date"] and time.time() > ls["expire_date"]):
            raise ValueError("INVITE_HASH_EXPIRED")
        chat = st.chats[chat_id]
        if user_id in chat["members"]:
            raise ValueError("USER_ALREADY_PARTICIPANT")
        if ls["member_limit"] is not None and len(ls["members"]) >= ls["member_limit"]:
            raise ValueError("USERS_TOO_MUCH")
        chat["members"].add(user_id)
        ls["members"].append(user_id)
        bot = st.by_id[ls["bot_id"]]
        uid = st.inject(bot, member_update(st, chat_id, user_id, "left", "member", ls, link,
                                           spec.get("first_name")))
    return {"ok": True, "update_id": uid}


def c_leave(st, spec):
    chat_id, user_id = spec["chat_id"], spec["user_id"]
    with st.lock:
        chat = st.chats.get(chat_id)
        if chat is None or user_id not in chat["members"]:
            raise ValueError("USER_NOT_PARTICIPANT")
        chat["members"].discard(user_id)
        ids = []
        for ls in st.links.values():
            if ls["chat_id"] == chat_id and user_id in ls["members"]:
                ls["members"].remove(user_id)   # the slot reopens
        for bid in sorted(chat["admins"]):
            if bid in st.by_id:
                ids.append(st.inject(st.by_id[bid],
                                     member_update(st, chat_id, user_id, "member", "left")))
    return {"ok": True, "update_ids": ids}


CONTROL = {
    "bots": c_bots,
    "updates": c_updates,
    "faults": c_faults,
    "chats": c_chats,
    "join": c_join,
    "leave": c_leave,
}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 2048       # 1,000 bots connect at once
    connections = 0                 # TCP connections accepted (keep-alive shows here)

    def process_request(self, request, client_address):
        self.connections += 1       # only the accepting thread writes it
        super().process_request(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="Local fake of the Telegram Bot API.")
    ap.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--quiet", action="store_true", help="no access log")
    ap.add_argument("--webhook-timeout", type=float, default=60.0,
                    help="seconds a webhook has to answer (Telegram: ~60)")
    ap.add_argument("--backoff-scale", type=float, default=1.0,
                    help="multiplies webhook retry delays (tests: 0.1)")
    args = ap.parse_args()
    threading.stack_size(512 * 1024)    # a thread per connection: keep them small
    server = Server((args.host, args.port), Handler)
    server.quiet = args.quiet
    server.state = State(args.webhook_timeout, args.backoff_scale)
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
