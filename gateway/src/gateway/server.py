"""`objectvision-gateway`: serve the gateway with uvicorn until SIGTERM, then drain."""

import uvicorn

from gateway.app import create_app
from gateway.config import GatewaySettings
from objectvision_common.logging import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", level=settings.log_level, json_output=settings.log_json)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        # On SIGTERM uvicorn stops accepting, lets in-flight requests finish for this long,
        # then runs the lifespan shutdown that closes the channels.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        lifespan="on",
        # grpc.aio runs on the standard asyncio loop.
        loop="asyncio",
        # Our JSON logging stays in place; our middleware writes the access log without
        # query strings, which may carry secrets.
        log_config=None,
        access_log=False,
        # The client address for rate limits is decided by TRUST_PROXY_HEADERS alone.
        proxy_headers=False,
        server_header=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
