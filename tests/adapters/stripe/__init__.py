"""Tests of the Stripe adapter and its webhooks."""
