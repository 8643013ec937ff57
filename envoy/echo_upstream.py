#!/usr/bin/env python3
"""Echo upstream for the claimgate demo and tests: answers every request with the
request line and headers it received, as JSON, so you can see what Envoy forwarded."""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    verbose = False

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            if name in headers:
                previous = headers[name]
                headers[name] = (previous if isinstance(previous, list) else [previous]) + [value]
            else:
                headers[name] = value
        body = json.dumps({"method": self.command, "path": self.path, "headers": headers}, indent=2).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

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
