"""Tests of gateway.privacy: retention, erasure, export, key rotation."""
