"""Tests of gateway.observability: logs and metrics."""
