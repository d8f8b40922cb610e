"""Tests of gateway.cli: the command groups and the development configuration."""
