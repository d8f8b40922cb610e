"""Tests of the PayPal adapter, its two verifiers and its webhooks."""
