"""Run every benchmark side by side on this machine; print a table, write bench/results.json.

make bench                      # everything
.venv/bin/python -m bench.run --only ceiling,sqlite --duration 10
.venv/bin/python -m bench.run --only naive --configs sync:5,gthread:5:4 --probe-seconds 5
.venv/bin/python -m bench.run --only read --read-rows 100000

Every ingest scenario is served at its own best gunicorn configuration: each of
--configs (by default sync and gthread at several worker counts) is probed for
--probe-seconds on fresh events, and the fastest serves the measured rounds. The
table and bench/results.json say which configuration each scenario used and what
every probe measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select, text

from bench.scratch import scratch_database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
VENV_BIN = Path(sys.executable).parent
POSTGRES_SERVER = os.environ.get(
    "PAYSIEVE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CONNECTIONS = 16
WRK_THREADS = 2


@dataclass(frozen=True)
class ServerConfig:
    """One gunicorn configuration: worker class, worker processes, threads per worker."""

    worker_class: str
    workers: int
    threads: int = 1

    @property
    def label(self) -> str:
        """Return the configuration as the table prints it (gthread 5x4, sync 5)."""
        if self.worker_class == "sync":
            return f"sync {self.workers}"
        return f"{self.worker_class} {self.workers}x{self.threads}"

    def args(self) -> list[str]:
        """Return gunicorn's command-line options for it (they override gunicorn.conf.py)."""
        return [
            "--worker-class",
            self.worker_class,
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
        ]

    @classmethod
    def parse(cls, text: str) -> ServerConfig:
        """Read "sync:5" or "gthread:5:4"; exit with one line naming --configs otherwise."""
        parts = text.split(":")
        try:
            if parts[0] == "sync" and len(parts) == 2:
                return cls("sync", int(parts[1]))
            if parts[0] == "gthread" and len(parts) == 3:
                return cls("gthread", int(parts[1]), int(parts[2]))
        except ValueError:
            pass
        raise SystemExit(f"--configs: {text!r} is not sync:WORKERS or gthread:WORKERS:THREADS")


# Each app is measured at its own best of these (sync closes every connection after its
# request; gthread keeps them open): one app's best is no other's, so a ratio between
# apps compares each at its best. The project's own default is gthread, 2 x cores + 1
# workers, 4 threads (gunicorn.conf.py). Fewer processes with more threads each are
# tried too: a process's threads share its commits (gateway.storage.groupcommit), and a
# naive app's threads may gain from them as well.
def default_configs() -> list[ServerConfig]:
    """Return the configurations tried: sync and gthread, at several worker and thread counts."""
    cores = os.cpu_count() or 1
    counts = sorted({cores + 1, 2 * cores + 1, 4 * cores})
    return (
        [ServerConfig("sync", n) for n in counts]
        + [ServerConfig("gthread", n, 4) for n in counts]
        + [ServerConfig("gthread", n, 8) for n in sorted({cores, cores + 1})]
    )


@dataclass
class Scenario:
    """One ingest scenario: which app, which provider, which database."""

    name: str
    title: str
    app: str
    provider: str = "stripe"
    database: str = "sqlite"
    duplicate_ratio: float = 0.0
    # Requests/s to pre-sign for; more than the scenario can take means no repeats.
    rate_hint: int = 800


SCENARIOS = [
    Scenario(
        "ceiling", "ceiling: read body, answer 200", "bench.apps:ceiling_app()", rate_hint=4000
    ),
    Scenario(
        "naive", "naive: construct_event + whole payload row (SQLite)", "bench.apps:naive_app()"
    ),
    Scenario("sqlite", "paysieve, Stripe, SQLite", "gateway:create_app()"),
    Scenario(
        "postgres", "paysieve, Stripe, PostgreSQL", "gateway:create_app()", database="postgresql"
    ),
    Scenario("razorpay", "paysieve, Razorpay, SQLite", "gateway:create_app()", provider="razorpay"),
    Scenario(
        "paypal", "paysieve, PayPal cert mode, SQLite", "gateway:create_app()", provider="paypal"
    ),
    Scenario(
        "duplicates",
        "paysieve, Stripe, SQLite, 30% duplicates",
        "gateway:create_app()",
        duplicate_ratio=0.3,
    ),
]


@dataclass
class Result:
    """What one scenario measured."""

    name: str
    title: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    events_stored: int | None = None
    durability: str = ""
    # The gunicorn configuration measured (the scenario's best of those tried).
    worker_class: str = ""
    workers: int = 0
    threads: int = 0
    configurations_tried: list[dict[str, Any]] = field(default_factory=list)
    # Deliveries per write transaction while the measured configuration served (warm-up
    # and rounds): group commit at work (gateway.storage.groupcommit). None for the
    # baselines, which have no such metric.
    batch_deliveries_mean: float | None = None
    batch_deliveries_histogram: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """Yield a fresh, empty database URL of the given kind; drop it afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'paysieve.db'}"
        return
    with scratch_database(POSTGRES_SERVER) as url:
        yield url


@contextmanager
def gunicorn(
    app: str, env: dict[str, str], port: int, workdir: Path, config: ServerConfig
) -> Iterator[None]:
    """Serve app under the project's gunicorn.conf.py in one configuration until the block ends."""
    log = (workdir / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), *config.args(), app],
        cwd=ROOT,
        env=env | {"PORT": str(port), "GUNICORN_HOST": "127.0.0.1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"gunicorn exited; see {workdir / 'gunicorn.log'}") from None
                time.sleep(0.2)
        time.sleep(1.0)  # let every worker finish booting
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def wrk(port: int, requests_file: Path, seconds: int) -> dict[str, Any]:
    """Drive the server with wrk for some seconds; return its summary."""
    completed = subprocess.run(
        [
            "wrk",
            "-t",
            str(WRK_THREADS),
            "-c",
            str(CONNECTIONS),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "wrk.lua"),
            f"http://127.0.0.1:{port}",
        ],
        env=os.environ | {"BENCH_REQUESTS": str(requests_file), "BENCH_THREADS": str(WRK_THREADS)},
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"BENCH_RESULT (\{.*\})", completed.stderr)
    if match is None:
        raise SystemExit(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    summary: dict[str, Any] = json.loads(match.group(1))
    summary["requests_per_s"] = summary["requests"] / (summary["duration_us"] / 1e6)
    return summary


def count_events(url: str, scenario: Scenario, workdir: Path) -> int | None:
    """Return how many events the scenario's database holds."""
    if scenario.name == "ceiling":
        return None
    if scenario.name == "naive":
        url = f"sqlite:///{workdir / 'naive.db'}"
        table = "stripe_events"
    else:
        table = "events"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(text(table))).scalar_one())
    finally:
        engine.dispose()


def durability(scenario: Scenario) -> str:
    """Say what an acknowledged event survives in this scenario's configuration."""
    if scenario.name == "ceiling":
        return "stores nothing"
    if scenario.database == "postgresql":
        return "PostgreSQL synchronous_commit=on: survives process crash and power loss"
    return "SQLite WAL synchronous=FULL: survives process crash and power loss"


@dataclass
class Served:
    """A scenario's gateway, up and warmed; prepare(n) writes round n's request file."""

    scenario: Scenario
    url: str
    workdir: Path
    port: int
    config: ServerConfig
    prepare: Callable[[int], Path] = field(default=lambda n: Path())
    tried: list[dict[str, Any]] = field(default_factory=list)
    # Events the probes stored before the measured rounds began.
    stored_before: int = 0
    distinct: int = 0
    prepared: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def serve(
    scenario: Scenario,
    seconds: int,
    rounds: int,
    configs: list[ServerConfig],
    probe_seconds: int,
) -> Iterator[Served]:
    """Serve a scenario from a fresh database, in its best configuration, until the block ends.

    With more than one configuration each is probed in turn (its own gunicorn, warmed, then
    probe_seconds of fresh events) and the fastest serves the measured rounds.
    """
    from bench.loadgen import write_requests
    from gateway.cli import devconfig
    from gateway.config.settings import load_settings
    from gateway.storage.engine import make_engine
    from gateway.storage.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix=f"paysieve-bench-{scenario.name}-"))
    try:
        with database(scenario.database, workdir) as url:
            config = workdir / "paysieve.toml"
            devconfig.write_config(config, database_url=url)
            settings = load_settings({"PAYSIEVE_CONFIG": str(config)})
            if scenario.app.startswith("gateway"):
                engine = make_engine(url)
                upgrade(engine)
                engine.dispose()
            stripe = settings.endpoint("stripe", "default")
            assert stripe is not None
            env = {k: v for k, v in os.environ.items() if not k.startswith("PAYSIEVE_")}
            env |= {
                "PAYSIEVE_CONFIG": str(config),
                "PAYSIEVE_LOG_LEVEL": "WARNING",
                "BENCH_STRIPE_SECRET": stripe.webhook_secrets[0],
                "BENCH_NAIVE_DB": str(workdir / "naive.db"),
            }
            # Every round replays its own events: none is a redelivery of an earlier round's.
            count = scenario.rate_hint * (seconds + 2)
            served = Served(scenario, url, workdir, free_port(), configs[0])

            def prepare(n: int) -> Path:
                # Signed just before its round: probing every scenario first takes longer
                # than the providers' five-minute signature tolerance.
                path = workdir / f"round{n}.txt"
                served.distinct += write_requests(
                    path,
                    settings,
                    scenario.provider,
                    count,
                    duplicate_ratio=scenario.duplicate_ratio,
                    seed=2 + n,
                )
                served.prepared += count
                return path

            served.prepare = prepare
            warm_file = workdir / "warmup.txt"
            write_requests(warm_file, settings, scenario.provider, 2000, seed=1)
            if len(configs) > 1:
                for n, candidate in enumerate(configs):
                    probe_file = workdir / f"probe{n}.txt"
                    write_requests(
                        probe_file,
                        settings,
                        scenario.provider,
                        scenario.rate_hint * (probe_seconds + 2),
                        duplicate_ratio=scenario.duplicate_ratio,
                        seed=1000 + n,
                    )
                    print(f"probing {scenario.name}: {candidate.label}", file=sys.stderr)
                    with gunicorn(scenario.app, env, served.port, workdir, candidate):
                        wrk(served.port, warm_file, 1)
                        probe = wrk(served.port, probe_file, probe_seconds)
                    served.tried.append(
                        {
                            "configuration": candidate.label,
                            "worker_class": candidate.worker_class,
                            "workers": candidate.workers,
                            "threads": candidate.threads,
                            "requests_per_s": round(probe["requests_per_s"], 1),
                            "p99_ms": probe["p99_ms"],
                            "non_2xx": probe["non_2xx"] + probe["errors"],
                        }
                    )
                # Only a configuration that answered every probe request can be the best.
                clean = [t for t in served.tried if t["non_2xx"] == 0] or served.tried
                best = max(clean, key=lambda t: t["requests_per_s"])
                served.config = configs[served.tried.index(best)]
                served.stored_before = count_events(url, scenario, workdir) or 0
            with gunicorn(scenario.app, env, served.port, workdir, served.config):
                wrk(served.port, warm_file, 2)
                yield served
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _stored(served: Served) -> int | None:
    """Return the events the measured rounds (and the last warm-up) stored, probes excluded."""
    count = count_events(served.url, served.scenario, served.workdir)
    return None if count is None else count - served.stored_before


def batch_sizes(port: int) -> tuple[float | None, dict[str, int]]:
    """Scrape paysieve_storage_batch_deliveries from a gateway's /metrics (every worker summed).

    Return the mean deliveries per write transaction and the count per bucket (``le``
    upper bound -> transactions of at most that many deliveries, cumulative as served).
    """
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        exposition = answer.read().decode()
    total = count = 0.0
    buckets: dict[str, int] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != "paysieve_storage_batch_deliveries":
            continue
        for sample in family.samples:
            if sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_bucket"):
                buckets[sample.labels["le"]] = int(sample.value)
    return (round(total / count, 2) if count else None), buckets


def result(served: Served) -> Result:
    """Sum a scenario's rounds: throughput over all of them, the median round's latencies."""
    runs = served.runs
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["duration_us"] for r in runs) / 1e6
    scenario = served.scenario
    mean, histogram = batch_sizes(served.port) if scenario.app.startswith("gateway") else (None, {})
    return Result(
        name=scenario.name,
        title=scenario.title,
        requests_per_s=round(requests / seconds, 1),
        p50_ms=round(statistics.median(r["p50_ms"] for r in runs), 2),
        p99_ms=round(statistics.median(r["p99_ms"] for r in runs), 2),
        requests=requests,
        non_2xx=sum(r["non_2xx"] for r in runs),
        errors=sum(r["errors"] for r in runs),
        events_stored=_stored(served),
        durability=durability(scenario),
        worker_class=served.config.worker_class,
        workers=served.config.workers,
        threads=served.config.threads,
        configurations_tried=served.tried,
        batch_deliveries_mean=mean,
        batch_deliveries_histogram=histogram,
        extra={
            "distinct_events_prepared": served.distinct,
            "requests_prepared": served.prepared,
            "rounds_requests_per_s": [round(r["requests_per_s"], 1) for r in runs],
        },
    )


def run_scenarios(
    chosen: list[Scenario],
    seconds: int,
    rounds: int,
    configs: list[ServerConfig],
    probe_seconds: int,
) -> list[Result]:
    """Serve every chosen scenario at once; measure them in turn, round after round.

    The machine's speed drifts from minute to minute; measuring each scenario in
    several short rounds, interleaved with the others, spreads that drift over all
    of them instead of handing it to whichever ran at the wrong moment.
    """
    per_round = max(1, round(seconds / rounds))
    with ExitStack() as stack:
        served = []
        for scenario in chosen:
            print(f"starting {scenario.name} ...", file=sys.stderr, flush=True)
            served.append(
                stack.enter_context(serve(scenario, per_round, rounds, configs, probe_seconds))
            )
        for n in range(rounds):
            # Each round in another order, so no scenario always follows the same one.
            order = served[n % len(served) :] + served[: n % len(served)]
            for each in order:
                print(f"round {n + 1}/{rounds}: {each.scenario.name}", file=sys.stderr, flush=True)
                each.runs.append(wrk(each.port, each.prepare(n), per_round))
        return [result(each) for each in served]


def machine() -> dict[str, Any]:
    """Describe the machine the figures came from."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
    }


def print_table(results: list[Result]) -> None:
    """Print the ingest results, each at its configuration, with ratios to the baselines."""
    by_name = {r.name: r for r in results}
    ceiling = by_name.get("ceiling")
    naive = by_name.get("naive")
    print(
        f"\n{'scenario':<52} {'gunicorn':>12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'x ceil':>7} {'x naive':>8} {'non-2xx':>8}"
    )
    for r in results:
        x_ceiling = f"{r.requests_per_s / ceiling.requests_per_s:.2f}" if ceiling else "-"
        x_naive = f"{r.requests_per_s / naive.requests_per_s:.2f}" if naive else "-"
        label = ServerConfig(r.worker_class, r.workers, r.threads).label
        print(
            f"{r.title:<52} {label:>12} {r.requests_per_s:>8.0f} {r.p50_ms:>7.2f} "
            f"{r.p99_ms:>7.2f} {x_ceiling:>7} {x_naive:>8} {r.non_2xx + r.errors:>8}"
        )
    batched = [r for r in results if r.batch_deliveries_mean is not None]
    if batched:
        print("\ndeliveries per write transaction (group commit), mean while measured:")
        print("  " + "  ".join(f"{r.name}: {r.batch_deliveries_mean:.2f}" for r in batched))
    tried = [r for r in results if len(r.configurations_tried) > 1]
    if tried:
        print("\nprobed req/s by gunicorn configuration (the best serves the rounds):")
        for r in tried:
            print(
                f"  {r.name:<11} "
                + "  ".join(
                    f"{t['configuration']}: {t['requests_per_s']:.0f}"
                    for t in r.configurations_tried
                )
            )


def _target(value: float, goal: str, holds: bool) -> dict[str, Any]:
    return {"value": round(value, 2), "target": goal, "holds": holds}


def targets(results: list[Result]) -> dict[str, Any]:
    """Evaluate the ratios issue 18 sets; each app at its own best configuration."""
    by_name = {r.name: r for r in results}
    out: dict[str, Any] = {}
    ceiling, naive, sqlite, pg = (
        by_name.get(n) for n in ("ceiling", "naive", "sqlite", "postgres")
    )
    if naive and sqlite:
        ratio = sqlite.requests_per_s / naive.requests_per_s
        out["sqlite_vs_naive"] = _target(ratio, ">= 1.3", ratio >= 1.3)
        out["sqlite_p99_vs_naive_p99"] = _target(
            sqlite.p99_ms / naive.p99_ms,
            "< 1 (p99 at 16 connections)",
            sqlite.p99_ms < naive.p99_ms,
        )
    if ceiling and sqlite:
        ratio = sqlite.requests_per_s / ceiling.requests_per_s
        out["sqlite_vs_ceiling"] = _target(ratio, ">= 0.35", ratio >= 0.35)
    if ceiling and pg:
        ratio = pg.requests_per_s / ceiling.requests_per_s
        out["postgres_vs_ceiling"] = _target(ratio, ">= 0.2", ratio >= 0.2)
    failed = {r.name: r.non_2xx + r.errors for r in results if r.non_2xx + r.errors}
    out["every_request_answered_2xx"] = {
        "value": failed or 0,
        "target": "no non-2xx answer or socket error in any scenario (else no ratio counts)",
        "holds": not failed,
    }
    if ceiling:
        fastest_other = max((r.requests_per_s for r in results if r.name != "ceiling"), default=0)
        out["loadgen_drives_ceiling_fastest"] = {
            "value": ceiling.requests_per_s,
            "target": "ceiling faster than every other scenario",
            "holds": ceiling.requests_per_s > fastest_other,
        }
    return out


def micro() -> dict[str, float]:
    """Run the pytest-benchmark microbenchmarks; return the mean microseconds of each."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "micro.json"
        subprocess.run(
            [
                str(VENV_BIN / "pytest"),
                str(ROOT / "bench" / "test_micro.py"),
                "-q",
                "-p",
                "no:cacheprovider",
                f"--benchmark-json={out}",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        data = json.loads(out.read_text())
    return {b["name"]: round(b["stats"]["mean"] * 1e6, 1) for b in data["benchmarks"]}


def print_micro(means: dict[str, float]) -> None:
    """Print where one delivery's time goes, per provider and stage."""
    stages = ("verify", "parse", "sanitise", "guard", "trail", "store")
    providers = sorted({name.split("[")[1].rstrip("]") for name in means})
    print(f"\n{'microseconds':<12}" + "".join(f"{stage:>10}" for stage in stages))
    for provider in providers:
        row = [means.get(f"test_{stage}[{provider}]", float("nan")) for stage in stages]
        print(f"{provider:<12}" + "".join(f"{value:>10.1f}" for value in row))


def read_at_scale(url: str | None, rows: int) -> dict[str, Any]:
    """Run bench.read_bench on SQLite (url None) or a PostgreSQL server; return its figures."""
    command = [str(VENV_BIN / "python"), "-m", "bench.read_bench", "--rows", str(rows), "--json"]
    if url is not None:
        command += ["--url", url]
    completed = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    match = re.search(r"BENCH_READ (\{.*\})", completed.stdout)
    if match is None:
        raise SystemExit(f"read bench printed no result:\n{completed.stdout}")
    figures: dict[str, Any] = json.loads(match.group(1))
    return figures


def print_read(results: list[dict[str, Any]]) -> None:
    """Print page latencies at the start and the end of a large list."""
    print(
        f"\n{'read API, ms (median)':<24}{'first':>8}{'near end':>10}{'customer':>10}"
        f"{'cust. late':>11}{'end/first':>10}{'1 record':>10}{'bare':>8}{'x bare':>8}"
    )
    for r in results:
        print(
            f"{r['database'] + ', ' + format(r['rows'], ',') + ' rows':<24}"
            f"{r['first_page_ms']:>8.1f}{r['near_end_page_ms']:>10.1f}"
            f"{r['customer_first_page_ms']:>10.1f}{r['customer_late_page_ms']:>11.1f}"
            f"{r['near_end_vs_first']:>10.2f}{r['one_record_page_ms']:>10.1f}"
            f"{r['bare_page_ms']:>8.2f}{r['api_page_over_bare']:>8.2f}"
        )


def outbound_at(url: str | None) -> dict[str, Any]:
    """Run bench.outbound_bench on SQLite (url None) or a PostgreSQL server; return its figures."""
    command = [str(VENV_BIN / "python"), "-m", "bench.outbound_bench"]
    if url is not None:
        command += ["--database-url", url]
    completed = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    match = re.search(r"BENCH_OUTBOUND (\{.*\})", completed.stdout)
    if match is None:
        raise SystemExit(f"outbound bench printed no result:\n{completed.stdout}")
    figures: dict[str, Any] = json.loads(match.group(1))
    return figures


def print_outbound(results: list[dict[str, Any]]) -> None:
    """Print outbound deliveries per second and the delivery lag."""
    print(f"\n{'outbound webhooks':<24}{'deliv/s':>9}{'lag p50 ms':>12}{'lag p99 ms':>12}")
    for r in results:
        print(
            f"{r['database']:<24}{r['deliveries_per_second']:>9.1f}"
            f"{r['lag_p50_ms']:>12.1f}{r['lag_p99_ms']:>12.1f}"
        )


def main() -> None:
    """Parse options, run the chosen scenarios, report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--duration", type=int, default=15, help="measured seconds per scenario")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds the duration is split into"
    )
    parser.add_argument("--read-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--configs",
        default="",
        help="comma-separated gunicorn configurations to try, sync:WORKERS or"
        " gthread:WORKERS:THREADS (default: sync and gthread at several worker counts)",
    )
    parser.add_argument(
        "--probe-seconds", type=int, default=3, help="seconds each configuration is probed"
    )
    args = parser.parse_args()
    configs = (
        [ServerConfig.parse(c) for c in args.configs.split(",")]
        if args.configs
        else default_configs()
    )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does this)")
    only = set(args.only.split(",")) if args.only else set()
    chosen = [s for s in SCENARIOS if not only or s.name in only]
    results = (
        run_scenarios(chosen, args.duration, args.rounds, configs, args.probe_seconds)
        if chosen
        else []
    )
    print_table(results)
    report: dict[str, Any] = {
        "machine": machine(),
        "connections": CONNECTIONS,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "probe_seconds": args.probe_seconds,
        "configurations": [c.label for c in configs],
        "ingest": [asdict(r) for r in results],
        "targets": targets(results),
    }
    if not only or "micro" in only:
        print("running in-process microbenchmarks ...", file=sys.stderr, flush=True)
        report["micro_us"] = micro()
        print_micro(report["micro_us"])
    if not only or "read" in only:
        report["read"] = []
        for url in (None, POSTGRES_SERVER):
            print(f"running read API at scale ({args.read_rows:,} rows) ...", file=sys.stderr)
            report["read"].append(read_at_scale(url, args.read_rows))
        for figures in report["read"]:
            ratio = figures["near_end_vs_first"]
            report["targets"][f"read_{figures['database']}_last_page_vs_first"] = _target(
                ratio, "<= 1.5", ratio <= 1.5
            )
            over_bare = figures["api_page_over_bare"]
            report["targets"][f"read_{figures['database']}_api_page_over_bare"] = _target(
                over_bare, "<= 4 (100 records; the same SELECT plus orjson.dumps)", over_bare <= 4
            )
        print_read(report["read"])
    if not only or "outbound" in only:
        print("running outbound webhooks to a local receiver ...", file=sys.stderr, flush=True)
        report["outbound"] = [outbound_at(url) for url in (None, POSTGRES_SERVER)]
        print_outbound(report["outbound"])
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    for name, target in report["targets"].items():
        print(f"  {name}: {target['value']} -> {'holds' if target['holds'] else 'MISSED'}")


if __name__ == "__main__":
    main()
