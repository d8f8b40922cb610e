"""Render audit results as text, JSON or a self-contained HTML page (inline SVG, no scripts)."""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, func, select

from gateway.audit.scan import ScanResult
from gateway.storage.tables import trail_counts, trail_guard_hits, trail_shapes


@dataclass
class ProviderTrail:
    """What one provider sent and what was kept, from the minimisation trail."""

    deliveries: int = 0
    # path -> (deliveries carrying it, kept?)
    paths: dict[str, list[int]] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)


@dataclass
class TrailSummary:
    """The trail tables, summarised for the report."""

    providers: dict[str, ProviderTrail] = field(default_factory=dict)
    guard_hits: dict[date, dict[str, int]] = field(default_factory=dict)


def read_trail(engine: Engine) -> TrailSummary:
    """Summarise the trail: per provider, per path, how many deliveries carried and kept it."""
    summary = TrailSummary()
    with engine.connect() as conn:
        counts = conn.execute(
            select(
                trail_counts.c.provider,
                trail_counts.c.event_type,
                trail_counts.c.shape_hash,
                func.sum(trail_counts.c.count),
            ).group_by(
                trail_counts.c.provider, trail_counts.c.event_type, trail_counts.c.shape_hash
            )
        ).all()
        per_shape: dict[str, int] = defaultdict(int)
        for provider, event_type, shape_hash, total in counts:
            trail = summary.providers.setdefault(provider, ProviderTrail())
            trail.deliveries += int(total)
            trail.by_type[event_type] = trail.by_type.get(event_type, 0) + int(total)
            per_shape[shape_hash] += int(total)
        for shape_hash, provider, path, kept in conn.execute(
            select(
                trail_shapes.c.shape_hash,
                trail_shapes.c.provider,
                trail_shapes.c.path,
                trail_shapes.c.kept,
            )
        ):
            seen = per_shape.get(shape_hash, 0)
            trail = summary.providers.setdefault(provider, ProviderTrail())
            entry = trail.paths.setdefault(path, [0, 0])
            entry[0] += seen
            entry[1] += seen if kept else 0
        for provider, reason, day, total in conn.execute(
            select(
                trail_guard_hits.c.provider,
                trail_guard_hits.c.reason,
                trail_guard_hits.c.day,
                trail_guard_hits.c.count,
            )
        ):
            bucket = summary.guard_hits.setdefault(day, {})
            key = f"{provider}:{reason}"
            bucket[key] = bucket.get(key, 0) + int(total)
    return summary


def render_text(result: ScanResult) -> str:
    """Return the scan result as lines of text."""
    lines = [
        f"paysieve audit: {result.tables} tables, {result.rows} rows, {result.values} values "
        f"in {result.seconds:.2f}s ({result.rate:,.0f} rows/s)"
    ]
    if not result.findings:
        lines.append("no findings")
    for f in result.findings:
        where = ".".join(p for p in (f.table, f.column) if p)
        row = f" row {f.row}" if f.row else ""
        lines.append(f"FINDING {f.kind}: {where}{row} ({f.detail})")
    return "\n".join(lines)


def render_json(result: ScanResult) -> str:
    """Return the scan result as JSON."""
    return orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode()


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#1b1b1b}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{padding:.25em .7em;border:1px solid #ddd;text-align:left}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#0a6b2d;font-weight:600}.bad{color:#a4000f;font-weight:600}
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:middle}
"""
_KEPT = "#2b7a3d"
_DROPPED = "#c9ccd1"
_HIT = "#b3261e"


def _bar_chart(rows: list[tuple[str, int, int]], title: str) -> str:
    """Return an inline SVG of horizontal bars: received (grey) with kept (green) over it."""
    width, label_w, bar_h, gap = 760, 340, 16, 6
    height = max(1, len(rows)) * (bar_h + gap) + 30
    peak = max((r[1] for r in rows), default=1) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" aria-label="{html.escape(title)}">',
        f"<title>{html.escape(title)}</title>",
    ]
    for index, (path, received, kept) in enumerate(rows):
        y = 20 + index * (bar_h + gap)
        scale = (width - label_w - 60) / peak
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h - 3}" text-anchor="end" font-size="12"'
            f' font-family="monospace">{html.escape(_short(path))}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{max(1, received * scale):.1f}"'
            f' height="{bar_h}" fill="{_DROPPED}"/>'
        )
        if kept:
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{kept * scale:.1f}" height="{bar_h}"'
                f' fill="{_KEPT}"/>'
            )
        parts.append(
            f'<text x="{label_w + received * scale + 6:.1f}" y="{y + bar_h - 3}"'
            f' font-size="12">{received}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(path: str, limit: int = 44) -> str:
    """Return a path that fits its label column, keeping its informative end."""
    return path if len(path) <= limit else "\u2026" + path[-(limit - 1) :]


def _hits_chart(days: list[tuple[date, int]]) -> str:
    """Return an inline SVG column chart of guard hits per day."""
    width, height, pad = 720, 180, 30
    peak = max((n for _, n in days), default=0) or 1
    step = (width - 2 * pad) / max(1, len(days))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" aria-label="guard hits per day">',
        "<title>guard hits per day</title>",
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}"'
        ' stroke="#888"/>',
    ]
    for index, (day, count) in enumerate(days):
        bar = (height - 2 * pad) * count / peak
        x = pad + index * step
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - pad - bar:.1f}" width="{max(2.0, step - 4):.1f}"'
            f' height="{bar:.1f}" fill="{_HIT}"><title>{day}: {count}</title></rect>'
        )
        parts.append(
            f'<text x="{x + step / 2:.1f}" y="{height - pad + 14}" font-size="11"'
            f' text-anchor="middle">{day.strftime("%m-%d")}</text>'
        )
    if not days:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no guard hits</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: ScanResult, trail: TrailSummary, *, top: int = 25) -> str:
    """Return a self-contained HTML report: findings, per-provider trail, guard hits."""
    status = (
        '<p class="ok">No findings: no card data, no column outside the allowlist.</p>'
        if not result.findings
        else f'<p class="bad">{len(result.findings)} finding(s).</p>'
    )
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>paysieve audit report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>paysieve audit report</h1>",
        f"<p>Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}. "
        f"Scanned {result.tables} tables, {result.rows:,} rows, {result.values:,} values "
        f"in {result.seconds:.2f}s.</p>",
        status,
        "<h2>Findings</h2>",
        '<table id="findings"><tr><th>kind</th><th>table</th><th>column</th><th>row id</th>'
        "<th>detail</th></tr>",
    ]
    for f in result.findings:
        out.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v or ''))}</td>"
                for v in (f.kind, f.table, f.column, f.row, f.detail)
            )
            + "</tr>"
        )
    if not result.findings:
        out.append("<tr><td colspan='5'>none</td></tr>")
    out.append("</table>")
    out.append("<h2>What arrived and what was kept</h2>")
    out.append(
        "<p class='legend'>Per provider, the field paths deliveries carried (grey) and"
        f" how many of them were kept (green)<span style='background:{_DROPPED}'></span>received"
        f"<span style='background:{_KEPT}'></span>kept. Free-form keys are collapsed"
        " (<code>metadata.*</code>, <code>&lt;key&gt;</code>), list items are <code>[]</code>.</p>"
    )
    if not trail.providers:
        out.append("<p>No deliveries recorded yet.</p>")
    for provider, data in sorted(trail.providers.items()):
        kept_paths = sum(1 for _, k in data.paths.values() if k)
        out.append(f"<h3>{html.escape(provider)}</h3>")
        out.append(
            f"<p>{data.deliveries:,} deliveries of {len(data.by_type)} event types;"
            f" {len(data.paths)} distinct field paths arrived, {kept_paths} were ever kept.</p>"
        )
        out.append(
            f'<table class="event-types" data-provider="{html.escape(provider)}">'
            "<tr><th>event type</th><th>deliveries</th></tr>"
        )
        for event_type, count in sorted(data.by_type.items()):
            out.append(
                f"<tr><td><code>{html.escape(event_type)}</code></td>"
                f"<td class='n'>{count:,}</td></tr>"
            )
        out.append("</table>")
        ranked = sorted(data.paths.items(), key=lambda item: (-item[1][1], -item[1][0], item[0]))
        rows = [(path, received, kept) for path, (received, kept) in ranked[:top]]
        out.append(_bar_chart(rows, f"{provider}: received and kept field paths"))
        out.append(
            f'<table class="trail" data-provider="{html.escape(provider)}"><tr><th>field path</th>'
            "<th>deliveries carrying it</th><th>kept</th><th>dropped</th></tr>"
        )
        for path, received, kept in rows:
            out.append(
                f"<tr><td><code>{html.escape(path)}</code></td><td class='n'>{received}</td>"
                f"<td class='n'>{kept}</td><td class='n'>{received - kept}</td></tr>"
            )
        out.append("</table>")
        if len(ranked) > top:
            out.append(f"<p>{len(ranked) - top} more paths, all dropped or rarer.</p>")
    out.append("<h2>Guard hits per day</h2>")
    days = sorted((day, sum(v.values())) for day, v in trail.guard_hits.items())
    out.append(_hits_chart(days[-60:]))
    out.append('<table id="guard-hits"><tr><th>day</th><th>provider:reason</th><th>hits</th></tr>')
    for day, reasons in sorted(trail.guard_hits.items()):
        for key, count in sorted(reasons.items()):
            out.append(
                f"<tr><td>{day}</td><td>{html.escape(key)}</td><td class='n'>{count}</td></tr>"
            )
    out.append("</table></body></html>")
    return "\n".join(out)


def as_jsonable(trail: TrailSummary) -> dict[str, Any]:
    """Return the trail summary as JSON-ready data."""
    return {
        "providers": {
            p: {"deliveries": t.deliveries, "event_types": t.by_type, "paths": t.paths}
            for p, t in trail.providers.items()
        },
        "guard_hits": {str(d): v for d, v in trail.guard_hits.items()},
    }
