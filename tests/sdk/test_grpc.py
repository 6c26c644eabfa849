"""gRPC through a REST API, with the official `grpcio` package on both ends: the standard health
service (grpcio-health-checking) behind the gateway, a unary call and a server stream, trailers
(the gRPC status) passed through, and the API's key checked on every call."""

import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from conftest import wait_until

CONTEXT = "/grpc.health.v1.Health"


@pytest.fixture
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(grace=None)


def test_unary_and_streaming_grpc_calls_pass_with_a_key(stack, health_server):
    servicer, port = health_server
    servicer.set("orders", health_pb2.HealthCheckResponse.SERVING)
    handle = "grpc-health"
    stack.create("rest-apis", {"id": handle, "displayName": handle, "context": CONTEXT,
                               # The context is stripped, as for any REST API: the upstream
                               # URL puts the service's path back.
                               "upstream": {"main": {"url": f"http://127.0.0.1:{port}{CONTEXT}"}},
                               "operations": [{"method": "POST", "path": "/*"}],
                               "policies": [{"name": "api-key-auth", "params": {"header": "x-api-key"}}]})
    stack.deploy("rest-apis", handle)
    key = stack.must(stack.api.post(f"/rest-apis/{handle}/api-keys", json={"displayName": "grpc"}), 201)["apiKey"]
    channel = grpc.insecure_channel(stack.gateway.removeprefix("http://"))
    stub = health_pb2_grpc.HealthStub(channel)
    auth = (("x-api-key", key),)

    def served():
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service="orders"), metadata=auth, timeout=5)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED,
                            grpc.StatusCode.UNAVAILABLE):
                return None  # the API or its key has not reached the gateway yet
            raise

    answer = wait_until("the API and its key on the gateway", served)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

    # The server's own error status arrives in the trailers.
    with pytest.raises(grpc.RpcError) as missing:
        stub.Check(health_pb2.HealthCheckRequest(service="nope"), metadata=auth, timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    # No key: refused by the gateway, per call.
    with pytest.raises(grpc.RpcError) as refused:
        stub.Check(health_pb2.HealthCheckRequest(service="orders"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # A server stream: each change arrives as it happens.
    stream = stub.Watch(health_pb2.HealthCheckRequest(service="orders"), metadata=auth, timeout=20)
    first = next(stream)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    started = time.monotonic()
    servicer.set("orders", health_pb2.HealthCheckResponse.NOT_SERVING)
    second = next(stream)
    assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert time.monotonic() - started < 5, "streamed, not buffered"
    stream.cancel()
    channel.close()
