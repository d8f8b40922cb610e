"""Run every benchmark side by side on this machine; print a table, write bench/results.json.

make bench                      # everything
.venv/bin/python -m bench.run --only ceiling,sqlite --duration 10
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
def gunicorn(app: str, env: dict[str, str], port: int, workdir: Path) -> Iterator[None]:
    """Serve app under the project's gunicorn.conf.py until the block ends."""
    log = (workdir / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), app],
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
    """A scenario's gateway, up and warmed, with one request file per measured round."""

    scenario: Scenario
    url: str
    workdir: Path
    port: int
    rounds: list[Path]
    distinct: int = 0
    prepared: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def serve(scenario: Scenario, seconds: int, rounds: int) -> Iterator[Served]:
    """Serve a scenario from a fresh database and a fresh gunicorn until the block ends."""
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
            served = Served(scenario, url, workdir, free_port(), [])
            for n in range(rounds):
                served.rounds.append(workdir / f"round{n}.txt")
                served.distinct += write_requests(
                    served.rounds[-1],
                    settings,
                    scenario.provider,
                    count,
                    duplicate_ratio=scenario.duplicate_ratio,
                    seed=2 + n,
                )
                served.prepared += count
            warm_file = workdir / "warmup.txt"
            write_requests(warm_file, settings, scenario.provider, 2000, seed=1)
            with gunicorn(scenario.app, env, served.port, workdir):
                wrk(served.port, warm_file, 2)
                yield served
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def result(served: Served) -> Result:
    """Sum a scenario's rounds: throughput over all of them, the median round's latencies."""
    runs = served.runs
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["duration_us"] for r in runs) / 1e6
    scenario = served.scenario
    return Result(
        name=scenario.name,
        title=scenario.title,
        requests_per_s=round(requests / seconds, 1),
        p50_ms=round(statistics.median(r["p50_ms"] for r in runs), 2),
        p99_ms=round(statistics.median(r["p99_ms"] for r in runs), 2),
        requests=requests,
        non_2xx=sum(r["non_2xx"] for r in runs),
        errors=sum(r["errors"] for r in runs),
        events_stored=count_events(served.url, scenario, served.workdir),
        durability=durability(scenario),
        extra={
            "distinct_events_prepared": served.distinct,
            "requests_prepared": served.prepared,
            "rounds_requests_per_s": [round(r["requests_per_s"], 1) for r in runs],
        },
    )


def run_scenarios(chosen: list[Scenario], seconds: int, rounds: int) -> list[Result]:
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
            served.append(stack.enter_context(serve(scenario, per_round, rounds)))
        for n in range(rounds):
            # Each round in another order, so no scenario always follows the same one.
            order = served[n % len(served) :] + served[: n % len(served)]
            for each in order:
                print(f"round {n + 1}/{rounds}: {each.scenario.name}", file=sys.stderr, flush=True)
                each.runs.append(wrk(each.port, each.rounds[n], per_round))
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
    """Print the ingest results with ratios to the ceiling and to the naive integration."""
    by_name = {r.name: r for r in results}
    ceiling = by_name.get("ceiling")
    naive = by_name.get("naive")
    print(
        f"\n{'scenario':<48} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'x ceil':>7} {'x naive':>8} {'non-2xx':>8}"
    )
    for r in results:
        x_ceiling = f"{r.requests_per_s / ceiling.requests_per_s:.2f}" if ceiling else "-"
        x_naive = f"{r.requests_per_s / naive.requests_per_s:.2f}" if naive else "-"
        print(
            f"{r.title:<48} {r.requests_per_s:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{x_ceiling:>7} {x_naive:>8} {r.non_2xx + r.errors:>8}"
        )


def targets(results: list[Result]) -> dict[str, Any]:
    """Evaluate the performance targets the project holds itself to."""
    by_name = {r.name: r for r in results}
    out: dict[str, Any] = {}
    ceiling, naive, sqlite, pg = (
        by_name.get(n) for n in ("ceiling", "naive", "sqlite", "postgres")
    )
    if ceiling and sqlite:
        ratio = sqlite.requests_per_s / ceiling.requests_per_s
        out["sqlite_vs_ceiling>=0.6"] = {"value": round(ratio, 2), "holds": ratio >= 0.6}
        out["sqlite_p99<25ms"] = {"value": sqlite.p99_ms, "holds": sqlite.p99_ms < 25}
    if naive and sqlite:
        ratio = sqlite.requests_per_s / naive.requests_per_s
        out["sqlite_vs_naive>=1.5"] = {"value": round(ratio, 2), "holds": ratio >= 1.5}
    if ceiling and pg:
        ratio = pg.requests_per_s / ceiling.requests_per_s
        out["postgres_vs_ceiling>=0.5"] = {"value": round(ratio, 2), "holds": ratio >= 0.5}
    if ceiling:
        fastest_other = max((r.requests_per_s for r in results if r.name != "ceiling"), default=0)
        out["loadgen_drives_ceiling_fastest"] = {
            "value": ceiling.requests_per_s,
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
        f"{'cust. late':>11}{'end/first':>10}"
    )
    for r in results:
        print(
            f"{r['database'] + ', ' + format(r['rows'], ',') + ' rows':<24}"
            f"{r['first_page_ms']:>8.1f}{r['near_end_page_ms']:>10.1f}"
            f"{r['customer_first_page_ms']:>10.1f}{r['customer_late_page_ms']:>11.1f}"
            f"{r['near_end_vs_first']:>10.2f}"
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
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does this)")
    only = set(args.only.split(",")) if args.only else set()
    chosen = [s for s in SCENARIOS if not only or s.name in only]
    results = run_scenarios(chosen, args.duration, args.rounds) if chosen else []
    print_table(results)
    report: dict[str, Any] = {
        "machine": machine(),
        "connections": CONNECTIONS,
        "duration_s": args.duration,
        "rounds": args.rounds,
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
            report["targets"][f"{figures['database']}_last_page<=1.5x_first"] = {
                "value": ratio,
                "holds": ratio <= 1.5,
            }
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
