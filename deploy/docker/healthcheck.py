"""Container health check for the ObjectVision images (Docker HEALTHCHECK, compose).

Kubernetes does not use this: it probes the same endpoints natively (``grpc:`` and
``httpGet:`` probes). No grpc_health_probe binary is needed, the service's own venv has grpcio.

    healthcheck.py grpc --port-env AUTH_GRPC_PORT --default-port 50051
    healthcheck.py http --port-env GATEWAY_METRICS_PORT --default-port 9100 --path /ready

Exit status 0 means healthy (gRPC health ``SERVING`` for the overall server, or HTTP 2xx),
1 means unhealthy, as Docker expects.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request


def _port(env_name: str, default: int) -> int:
    value = os.environ.get(env_name, "").strip()
    return int(value) if value else default


def check_grpc(host: str, port: int, service: str, timeout: float) -> bool:
    """True when the standard gRPC health service answers SERVING for ``service``."""
    import grpc  # the service venv has it; imported here so the http mode never needs it
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            print(f"unhealthy: {error.code().name}", file=sys.stderr)
            return False
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        print(f"unhealthy: status {reply.status}", file=sys.stderr)
    return serving


def check_http(host: str, port: int, path: str, timeout: float) -> bool:
    """True when ``GET http://host:port/path`` answers 2xx."""
    url = f"http://{host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["grpc", "http"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-env", required=True, help="variable holding the port")
    parser.add_argument("--default-port", type=int, required=True)
    parser.add_argument("--service", default="", help="gRPC health service name ('' = server)")
    parser.add_argument("--path", default="/health", help="HTTP path")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    port = _port(args.port_env, args.default_port)
    if args.mode == "grpc":
        healthy = check_grpc(args.host, port, args.service, args.timeout)
    else:
        healthy = check_http(args.host, port, args.path, args.timeout)
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
