"""Tests of gateway.web: the JSON error shape and request log lines on every server."""
