#!/usr/bin/env python3
"""Clients (and a gRPC server) for tests/envoy/websocket_grpc.rs, with the pinned
`websockets` and `grpcio` packages scripts/bootstrap.sh --wasm-tests installs.

  websocket URL [--header NAME:VALUE]...   open a WebSocket, read the upstream's first
                                           message, send "ping" and read its echo; prints
                                           {"status": 101, "first": ..., "echo": ...} or
                                           {"status": N, "headers": {...}} when refused
  grpc-serve --port P                      a gRPC server (generic handler, no protoc): the
                                           unary method /aethermarket.orders.Orders/Get
                                           answers "order for <x-user-id>"; prints "ready"
  grpc-call --port P --method M [--token T]   one unary call; prints
                                           {"code": N, "details": ..., "response": ...}
"""
import argparse
import json
import sys
import time


def websocket(args):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    headers = [tuple(h.split(":", 1)) for h in args.header]
    try:
        with connect(args.url, additional_headers=headers, open_timeout=10, close_timeout=5) as ws:
            first = json.loads(ws.recv(timeout=10))
            ws.send("ping")
            echo = ws.recv(timeout=10)
            print(json.dumps({"status": 101, "first": first, "echo": echo}))
    except InvalidStatus as refused:
        response = refused.response
        print(json.dumps({
            "status": response.status_code,
            "headers": {k.lower(): v for k, v in response.headers.raw_items()},
            "body": response.body.decode(errors="replace"),
        }))


def grpc_serve(args):
    from concurrent import futures

    import grpc

    def get(request, context):
        metadata = dict(context.invocation_metadata())
        return ("order for " + metadata.get("x-user-id", "nobody") + ": " + request.decode()).encode()

    handler = grpc.method_handlers_generic_handler(
        "aethermarket.orders.Orders", {"Get": grpc.unary_unary_rpc_method_handler(get)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


def grpc_call(args):
    import grpc

    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        call = channel.unary_unary(args.method)
        try:
            response = call(b"42", metadata=metadata, timeout=10)
            print(json.dumps({"code": 0, "details": None, "response": response.decode()}))
        except grpc.RpcError as error:
            print(json.dumps({"code": error.code().value[0], "details": error.details(), "response": None}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    ws = commands.add_parser("websocket")
    ws.add_argument("url")
    ws.add_argument("--header", action="append", default=[])
    serve = commands.add_parser("grpc-serve")
    serve.add_argument("--port", type=int, required=True)
    call = commands.add_parser("grpc-call")
    call.add_argument("--port", type=int, required=True)
    call.add_argument("--method", required=True)
    call.add_argument("--token")
    args = parser.parse_args()
    commands = {"websocket": websocket, "grpc-serve": grpc_serve, "grpc-call": grpc_call}
    commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
