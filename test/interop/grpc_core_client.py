"""A gRPC client on C-core (Debian's python3-grpcio), for test/interop/grpc-core.test.ts.

The TypeScript test owns the protobuf side: there is no protoc or grpcio-tools
here, so this script only moves bytes. It reads a plan on stdin:

  {"target": "127.0.0.1:PORT",
   "calls": [{"path": "/pkg.Service/Method", "request": "<base64>",
              "metadata": [["key", "value"], ["key-bin", "<base64>"]],
              "compression": "gzip" | null, "timeout": seconds | null}]}

and prints one JSON line per call, in order:

  {"code": "OK", "details": "...", "initial_metadata": [[k, v]],
   "trailing_metadata": [[k, v]], "response": "<base64>" | null}

Values of "-bin" keys are base64 both ways, because that is how they travel
in JSON; on the wire C-core sends and decodes them itself, which is the point.
The test may set GRPC_TRACE and GRPC_VERBOSITY to read what C-core logs on stderr.
"""

import base64
import json
import sys

import grpc


def binary_key(key):
    return key.endswith("-bin")


def to_grpc_metadata(pairs):
    # C-core insists on bytes for -bin keys and on str for every other key.
    return [(k, base64.b64decode(v) if binary_key(k) else v) for k, v in pairs]


def from_grpc_metadata(metadata):
    # Order and repeated keys are kept: the test may care which came first.
    return [
        [k, base64.b64encode(v).decode("ascii") if binary_key(k) else v]
        for k, v in (metadata or ())
    ]


def run_call(channel, call):
    # Identity serializers: requests and responses stay the bytes the test encoded and will decode.
    method = channel.unary_unary(call["path"], request_serializer=None, response_deserializer=None)
    compression = grpc.Compression.Gzip if call.get("compression") == "gzip" else None
    try:
        response, rpc = method.with_call(
            base64.b64decode(call["request"]),
            metadata=to_grpc_metadata(call.get("metadata", [])),
            timeout=call.get("timeout"),
            compression=compression,
        )
    except grpc.RpcError as err:
        # A failed unary call's error is also its Call: status and both metadata sets, as C-core saw them.
        rpc, response = err, None
    return {
        "code": rpc.code().name,
        "details": rpc.details() or "",
        "initial_metadata": from_grpc_metadata(rpc.initial_metadata()),
        "trailing_metadata": from_grpc_metadata(rpc.trailing_metadata()),
        "response": None if response is None else base64.b64encode(response).decode("ascii"),
    }


# Each planned call is exactly one HTTP/2 stream to the target: no proxy from the environment in
# between, and no retry that could send a refused call again (rate-limit counts must stay exact).
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]


def main():
    plan = json.load(sys.stdin)
    with grpc.insecure_channel(plan["target"], options=CHANNEL_OPTIONS) as channel:
        # Connected before the first call, so a call's timeout measures the call, not connection set-up.
        grpc.channel_ready_future(channel).result(timeout=30)
        for call in plan["calls"]:
            print(json.dumps(run_call(channel, call)), flush=True)


if __name__ == "__main__":
    main()
