"""Core: errors, record types, the card-number guard, crypto.

The vocabulary every other package speaks. Imports nothing else of the project.
"""
