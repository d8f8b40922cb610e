"""Tests of gateway.config: the settings table."""
