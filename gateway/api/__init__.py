"""API: every keyed HTTP route (records, change feed, customers, audit log, OpenAPI), API
keys and their scopes, and the unkeyed health probes.

May import gateway.privacy, gateway.audit, gateway.storage, gateway.web and everything below.
"""
