"""The public REST gateway: authenticates callers and routes their requests to the gRPC services."""
