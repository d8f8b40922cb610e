"""Ingest: the webhook routes, the pipeline from raw bytes to stored records, source networks.

May import adapters, gateway.storage and everything below it.
"""
