"""Outbound webhooks: subscribers, and the sender that delivers the outbox to them.

Above the API layer: a delivered body is built by the same serializer the change feed
and the record routes use (gateway.api.records).
"""
