#!/usr/bin/env python3
"""Echo upstream for the claimgate demo and tests: answers every request with the
request line and headers it received, as JSON, so you can see what Envoy forwarded.
A WebSocket upgrade (RFC 6455) is accepted: the first message is that JSON, then every
text or binary message is sent back as it came, until the client closes."""
import argparse
import base64
import hashlib
import json
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    verbose = False

    def echo(self):
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            if name in headers:
                previous = headers[name]
                headers[name] = (previous if isinstance(previous, list) else [previous]) + [value]
            else:
                headers[name] = value
        return json.dumps({"method": self.command, "path": self.path, "headers": headers}, indent=2).encode()

    def handle_any(self):
        if "websocket" in (self.headers.get("upgrade") or "").lower():
            return self.websocket()
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = self.echo()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def websocket(self):
        key = self.headers.get("sec-websocket-key") or ""
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("upgrade", "websocket")
        self.send_header("connection", "Upgrade")
        self.send_header("sec-websocket-accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.send_frame(0x1, self.echo())
        while True:
            frame = self.read_frame()
            if frame is None or frame[0] == 0x8:
                self.send_frame(0x8, b"" if frame is None else frame[1][:2])
                break
            if frame[0] in (0x1, 0x2):
                self.send_frame(frame[0], frame[1])
            elif frame[0] == 0x9:
                self.send_frame(0xA, frame[1])
        self.close_connection = True

    def read_frame(self):
        head = self.rfile.read(2)
        if len(head) < 2:
            return None
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", self.rfile.read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self.rfile.read(8))[0]
        mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        payload = self.rfile.read(length)
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    def send_frame(self, opcode, payload):
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
        self.wfile.write(header + payload)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any

    def log_message(self, fmt, *args):
        if self.verbose:
            super().log_message(fmt, *args)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=10001)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    Echo.verbose = args.verbose
    server = ThreadingHTTPServer((args.host, args.port), Echo)
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
