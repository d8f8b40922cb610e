"""Time one delivery's guard and trail, and a page's record work, against an earlier revision.

    .venv/bin/python -m bench.side_by_side --rev b077f76

The earlier revision's gateway/core/guard.py and gateway/storage/trail.py are read
with ``git show`` and loaded beside this checkout's; each measure runs the two in
alternation in this one process (the machine's drift reaches both alike) and prints
before, after and before/after, per provider. Outputs are compared first: a
difference stops the run. The page's record work is main's way (a schema instance
per record, the earlier guard under json_answer's withholding) against this
checkout's dumpers and guard, on 100 rows as the read API opens them.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.test_micro import EVENTS, Delivery
from gateway.api import answers
from gateway.api.schemas import TransactionOut, dumper
from gateway.cli import devconfig
from gateway.config.settings import load_settings
from gateway.core import guard
from gateway.storage import trail

ROOT = Path(__file__).resolve().parents[1]


def load_from(rev: str, path: str, name: str, workdir: Path) -> ModuleType:
    """Return the module at path as it was at rev, loaded under name."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    file = workdir / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pair(before: Callable[[], Any], after: Callable[[], Any], number: int) -> tuple[float, float]:
    """Return the median microseconds of before and after, timed in alternation."""
    old: list[float] = []
    new: list[float] = []
    for n in range(9):
        sides = [(before, old), (after, new)]
        for run, samples in sides if n % 2 else sides[::-1]:
            samples.append(timeit.timeit(run, number=number) / number * 1e6)
    return statistics.median(old), statistics.median(new)


def report(what: str, times: tuple[float, float]) -> None:
    """Print one measure's before, after and ratio."""
    before, after = times
    ratio = before / after
    print(f"{what:<34} before {before:8.1f} us  after {after:8.1f} us  before/after {ratio:5.2f}")


def page_rows() -> list[dict[str, Any]]:
    """Return 100 opened transaction rows shaped like the read benchmark's."""
    now = datetime.now(UTC)
    return [
        {
            "pk": n,
            "provider": "stripe",
            "account": "default",
            "id": f"ch_read{n:010d}",
            "kind": "payment",
            "status": "succeeded",
            "provider_status": "succeeded",
            "amount": 1000 + n,
            "currency": "USD",
            "customer": f"cus_read{n % 1000:05d}",
            "payment_intent": None,
            "charge": None,
            "order": None,
            "invoice": None,
            "subscription": None,
            "refund_of": None,
            "payment_method": None,
            "created_at": now,
            "updated_at": now,
            "last_event_id": f"evt_read{n:010d}",
            "last_event_at": now,
        }
        for n in range(100)
    ]


def one_delivery(delivery: Delivery, old_guard: ModuleType, old_trail: ModuleType) -> None:
    """Check and time one provider's delivery through both guards and both trails."""
    adapter = delivery.adapter
    records = delivery.sanitised.records
    kept, hits = guard.check(records)
    before_kept, before_hits = old_guard.check(records)
    assert [(r.type, r.values) for r in kept] == [(r.type, r.values) for r in before_kept]
    assert [(h.path, h.reason) for h in hits] == [(h.path, h.reason) for h in before_hits]
    times = pair(lambda: old_guard.check(records), lambda: guard.check(records), 300)
    report(f"{adapter.name} guard.check", times)
    names = {adapter.name: {f for s in adapter.schemas().values() for f in s.fields}}
    words = {adapter.name: adapter.vocabulary}
    old, new = old_trail.Trail(names, vocabularies=words), trail.Trail(names, vocabularies=words)
    meta = adapter.meta(delivery.parsed, delivery.headers)

    def observe(t: Any) -> Any:
        return t.observe(adapter.name, meta.type, delivery.parsed, kept, hits)

    a, b = observe(old), observe(new)
    assert (a.shape_hash, a.paths) == (b.shape_hash, b.paths)
    report(f"{adapter.name} trail.observe", pair(lambda: observe(old), lambda: observe(new), 300))


def main() -> None:
    """Load the earlier modules, check they agree, time both sides."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rev", required=True, help="the earlier revision (a commit or branch)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="paysieve-side-"))
    old_guard = load_from(args.rev, "gateway/core/guard.py", "guard_before", workdir)
    old_trail = load_from(args.rev, "gateway/storage/trail.py", "trail_before", workdir)
    config = workdir / "paysieve.toml"
    devconfig.write_config(config, database_url=f"sqlite:///{workdir / 'side.db'}")
    settings = load_settings({"PAYSIEVE_CONFIG": str(config)})
    for provider in sorted(EVENTS):
        one_delivery(Delivery(settings, provider), old_guard, old_trail)
    rows = page_rows()
    dump = dumper(TransactionOut)

    namespace = vars(answers)

    def page_before() -> None:
        saved = namespace["guard"]
        namespace["guard"] = old_guard
        try:
            answers._withhold({"data": [TransactionOut().dump(r) for r in rows]}, "$", [])
        finally:
            namespace["guard"] = saved

    def page_after() -> None:
        answers._withhold({"data": [dump(r) for r in rows]}, "$", [])

    assert [TransactionOut().dump(r) for r in rows] == [dump(r) for r in rows]
    report("100-record page: dump + withhold", pair(page_before, page_after, 5))


if __name__ == "__main__":
    main()
