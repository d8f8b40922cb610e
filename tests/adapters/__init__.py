"""Tests of the provider adapters, one package per provider."""
