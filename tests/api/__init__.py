"""Tests of gateway.api: the keyed routes, API keys, health probes, OpenAPI."""
