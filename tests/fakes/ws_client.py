#!/usr/bin/env python3
"""ws_client — a small WebSocket client (RFC 6455) in the Python stdlib, for tests.

Used by tests/integration/test_broadcaster.sh to talk to rastro-broadcaster
(schemas/websocket.md). It does the HTTP/1.1 upgrade (and checks the
Sec-WebSocket-Accept key), masks every frame it sends, reads text, binary,
ping (answered with a pong), pong and close frames, and can also send
deliberately broken frames (unmasked, bad opcodes, truncated) to test the
server's defences.

As a module:
    c = WsClient("127.0.0.1", port, cookie="rastro_session=TOKEN")
    status = c.connect()              # 101 when upgraded, else the HTTP status
    c.send_json({"type": "subscribe", "bots": [1]})
    msg = c.recv_json(timeout=10)     # next text message, parsed

As a command (manual poking):
    ws_client.py --port 8090 --cookie TOKEN --send '{"type":"subscribe","bots":[1]}' --count 3
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class WsClosed(Exception):
    """The server closed the connection (code, reason in args)."""


class WsClient:
    def __init__(self, host, port, path="/ws", cookie=None, origin=None, rcvbuf=None,
                 timeout=10.0):
        self.host, self.port, self.path = host, port, path
        self.cookie, self.origin, self.rcvbuf = cookie, origin, rcvbuf
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.status = None
        self.headers = {}
        self.body = b""
        self.close_code = None
        self.pings = 0

    # ---- handshake -----------------------------------------------------------------
    def connect(self, extra_headers=None, version="HTTP/1.1"):
        """Opens the connection and asks for the upgrade. Returns the HTTP status."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            # Before connect, so that the window the server sees is small.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {self.path} {version}", f"Host: {self.host}:{self.port}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        if self.origin:
            lines.append(f"Origin: {self.origin}")
        for k, v in (extra_headers or {}).items():
            lines.append(f"{k}: {v}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WsClosed(None, "closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for h in header_lines:
            k, _, v = h.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                self.buf += chunk
            self.body, self.buf = self.buf[:n], self.buf[n:]
            self.sock.close()
            return self.status
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            raise AssertionError("bad Sec-WebSocket-Accept: %r" % self.headers)
        return 101

    # ---- sending -------------------------------------------------------------------
    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
        """Sends one frame. LENGTH overrides the length field (to lie about it)."""
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        head = bytes([b0])
        mbit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack("!Q", n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def close(self, code=1000):
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code))
        except OSError:
            pass

    def abort(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- receiving -----------------------------------------------------------------
    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsClosed(self.close_code, "connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=None):
        """Returns (opcode, fin, payload) of the next frame."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        b0, b1 = self._need(2, deadline)
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8, deadline))[0]
        return b0 & 0x0F, bool(b0 & 0x80), self._need(n, deadline)

    def recv_message(self, timeout=None):
        """Next data message as (opcode, bytes); answers pings; raises WsClosed on close."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        parts, first = [], None
        while True:
            op, fin, payload = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if op == OP_PING:
                self.pings += 1
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                raise WsClosed(self.close_code, payload[2:].decode("utf-8", "replace"))
            if op != OP_CONT:
                first = op
            parts.append(payload)
            if fin:
                return first, b"".join(parts)

    def recv_json(self, timeout=None):
        op, data = self.recv_message(timeout)
        if op != OP_TEXT:
            raise AssertionError("expected a text frame, got opcode %d" % op)
        return json.loads(data)


def main():
    ap = argparse.ArgumentParser(description="tiny WebSocket client")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/ws")
    ap.add_argument("--cookie", help="rastro_session value")
    ap.add_argument("--origin")
    ap.add_argument("--send", action="append", default=[], help="text message to send")
    ap.add_argument("--count", type=int, default=1, help="messages to print")
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    c = WsClient(a.host, a.port, a.path, cookie=a.cookie and f"rastro_session={a.cookie}",
                 origin=a.origin, timeout=a.timeout)
    status = c.connect()
    if status != 101:
        print(f"HTTP {status}: {c.body.decode('utf-8', 'replace')}")
        return 1
    for m in a.send:
        c.send_text(m)
    for _ in range(a.count):
        op, data = c.recv_message()
        print(data.decode("utf-8", "replace"))
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
