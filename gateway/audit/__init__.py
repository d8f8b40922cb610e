"""Audit: the audit log of who did what, the allowlist as evidence, the database scan, its
report and the shipped field-allowlist self-test.

May import gateway.storage and everything below it. The self-test's pytest modules drive the
whole gateway as an auditor would (create_app, API keys): the layer contract lists them.
"""
