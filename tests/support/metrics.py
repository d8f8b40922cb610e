"""Read the /metrics answer: every sample by name and labels."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return every sample of the /metrics answer keyed by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in response.get_data(as_text=True).splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        found[(match["name"], labels)] = float(match["value"])
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """Return one sample's value, 0 when it was never counted."""
    return found.get((name, frozenset(labels.items())), 0.0)
