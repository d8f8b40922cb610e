"""Tests of gateway.storage: the store, group commit, prepared statements, trail, migrations."""
