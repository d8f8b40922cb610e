"""The field-allowlist tests auditors run, shipped in the package: ``paysieve audit --self-test``.

They also run in the source checkout's suite (tests/audit/ imports them), there on
the suite's database (SQLite or PostgreSQL); the self-test uses a temporary SQLite file.
"""
