"""Tests of gateway.core: errors, records, the card-number guard, crypto."""
