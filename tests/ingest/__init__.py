"""Tests of gateway.ingest: webhook routes, the pipeline, source networks, replays."""
