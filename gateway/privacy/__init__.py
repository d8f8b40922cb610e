"""Privacy: retention, erasure with tombstones, data-subject export and data-key rotation.

May import gateway.audit, gateway.storage and everything below them.
"""
