"""Storage: tables, engine, the store (the write transaction), group commit, prepared
statements, the minimisation trail and the Alembic migrations.

May import gateway.core, gateway.config and gateway.observability.
"""
