"""Tests of the Razorpay adapter and its webhooks."""
