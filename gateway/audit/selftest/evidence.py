"""What the self-test saw, summarised for the auditor (counts only, never values)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Evidence:
    """Counters the property tests add to while they run."""

    cases: int = 0
    deliveries: int = 0
    planted: int = 0
    planted_pans: int = 0
    places_checked: set[str] = field(default_factory=set)
    providers: set[str] = field(default_factory=set)
    event_types: int = 0
    hits: int = 0

    def summary(self) -> str:
        """Return the evidence summary as a few lines of text."""
        places = ", ".join(sorted(self.places_checked)) or "none"
        return "\n".join(
            [
                "paysieve field-allowlist evidence",
                f"  providers: {', '.join(sorted(self.providers)) or 'none'}"
                f" ({self.event_types} event types)",
                f"  cases run: {self.cases} ({self.deliveries} signed deliveries over HTTP)",
                f"  values planted: {self.planted} (card numbers: {self.planted_pans})",
                f"  searched: {places}",
                f"  planted values found: {self.hits}",
            ]
        )


EVIDENCE = Evidence()
