"""Config: the one table of settings, read from the TOML file and the environment.

May import gateway.core only.
"""
