"""Observability: JSON logs with redaction, Prometheus metrics and their /metrics route.

May import gateway.core only.
"""
