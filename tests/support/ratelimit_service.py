"""A RateLimitService (envoy.service.ratelimit.v3) for the global rate limit tests: grpcio
with a generic handler and protobuf encoded by hand (the reference service, a Go program
backed by Redis, is not installable here). One-minute windows per descriptor (from the
service's start),
limits from the command line; every request's domain and descriptors are appended to a
JSON-lines log so the test sees what Envoy sent.

usage: ratelimit_service.py PORT_FILE LOG_FILE LIMITS_JSON   (e.g. '{"tier=Bronze": 3}')
"""

import json
import os
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "envoy.service.ratelimit.v3.RateLimitService"
OK, OVER_LIMIT = 1, 2


def varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data):
    """(field number, wire type, value) of a protobuf message; bytes for length-delimited."""
    at = 0
    while at < len(data):
        key, at = varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(data, at)
        elif wire == 2:
            length, at = varint(data, at)
            value, at = data[at:at + length], at + length
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def parse_request(data):
    domain, descriptors, hits = "", [], 1
    for number, _, value in fields(data):
        if number == 1:
            domain = value.decode()
        elif number == 2:
            entries = []
            for entry_number, _, entry in fields(value):
                if entry_number == 1:
                    pair = {n: v.decode() for n, _, v in fields(entry) if n in (1, 2)}
                    entries.append([pair.get(1, ""), pair.get(2, "")])
            descriptors.append(entries)
        elif number == 3 and value:
            hits = value
    return domain, descriptors, hits


def main():
    port_file, log_file, limits = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    counts, lock, started = {}, threading.Lock(), time.monotonic()

    def should_rate_limit(request, _context):
        domain, descriptors, hits = parse_request(request)
        # Minute windows from the service's start, so a test's requests never straddle
        # a window boundary (a wall-clock minute could reset the count mid-test).
        window = int((time.monotonic() - started) // 60)
        code = OK
        with lock:
            with open(log_file, "a") as log:
                log.write(json.dumps({"domain": domain, "descriptors": descriptors}) + "\n")
            for entries in descriptors:
                name = ",".join(f"{key}={value}" for key, value in entries)
                if name in limits:
                    used = counts.get((name, window), 0) + hits
                    counts[(name, window)] = used
                    if used > limits[name]:
                        code = OVER_LIMIT
        # RateLimitResponse { overall_code = 1 (enum, varint) }
        return bytes([0x08, code])

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {"ShouldRateLimit": grpc.unary_unary_rpc_method_handler(should_rate_limit)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(port_file + ".tmp", "w") as out:
        out.write(str(port))
    os.replace(port_file + ".tmp", port_file)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
