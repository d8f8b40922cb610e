"""Provider adapters: one package per provider behind the small interface in adapters.base.

adapters.shapes holds the field shapes every provider validates against; adapters.registry
maps provider names to the built-in adapters. The provider packages never import the
registry. May import gateway.core and gateway.config only.
"""
