"""Production serving: ``gunicorn -c gunicorn.conf.py 'gateway:create_app()'``.

Knobs, all optional, read from the environment:

GUNICORN_WORKERS / WEB_CONCURRENCY  worker processes (default 2 x cores + 1, at most 12)
GUNICORN_THREADS                    threads per worker (default 4)
GUNICORN_HOST / PORT                address to bind (default 127.0.0.1:8000; the image sets 0.0.0.0)
PROMETHEUS_MULTIPROC_DIR            where workers keep their metric files (default: a temp dir)
GUNICORN_CMD_ARGS                   gunicorn's own: any other setting (``--keep-alive 75``)
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


def _cores() -> int:
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _positive(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    value = int(raw)
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


# Sync would also do: a delivery is a few milliseconds of CPU around one database round
# trip. gthread keeps the load balancer's idle connections open without tying up a
# worker each (sync closes every connection), and delivered about twice as many per
# second on 2 cores, on PostgreSQL and SQLite (docs/operators/gunicorn.md: "Choosing the
# worker class").
worker_class = "gthread"
threads = _positive("GUNICORN_THREADS") or 4
workers = _positive("GUNICORN_WORKERS") or _positive("WEB_CONCURRENCY") or min(2 * _cores() + 1, 12)

bind = [f"{os.environ.get('GUNICORN_HOST') or '127.0.0.1'}:{_positive('PORT') or 8000}"]

# Razorpay gives up on a delivery after 5 s (Stripe and PayPal wait longer): a worker
# silent for longer is stuck, and its delivery will be retried by the provider anyway.
timeout = 5
# SIGTERM: stop accepting, let in-flight deliveries commit, then exit. Longer than the
# slowest delivery (SQLite busy timeout 2 s, PostgreSQL lock timeout 5 s).
graceful_timeout = 15
# Idle keep-alive connections stay open this long. Behind a load balancer set it above
# the balancer's idle timeout (GUNICORN_CMD_ARGS="--keep-alive 75" behind an AWS ALB),
# so the gateway never closes a connection the balancer is about to reuse.
keepalive = 5

# Every worker builds its own app, engine and connection pool after the fork: sockets
# and SQLite handles must never be shared across processes.
preload_app = False

# Forwarded headers are ProxyFix's job (PAYSIEVE_TRUSTED_PROXY_HOPS), in one place.
forwarded_allow_ips = ""

# The worker heartbeat file: tmpfs where there is one, since a container's /tmp may be
# an overlay whose writes can stall and get healthy workers killed.
_SHM = "/dev/shm"  # noqa: S108 - a fixed system tmpfs, not a predictable file name
if Path(_SHM).is_dir() and os.access(_SHM, os.W_OK):
    worker_tmp_dir = _SHM

# Access log: the route template the app matched (/v1/customers/<provider>/<customer>,
# or <unmatched>), never the path, which carries customer ids and tokens, nor the query
# string, nor header values. Application logs are JSON lines on standard error through
# the redaction filter.
accesslog = "-"
errorlog = "-"
# gunicorn's own lines and answers held to the same rules: its error log redacted, its
# access-log methods checked, its answers to requests it cannot parse in JSON.
logger_class = "gateway.web.serving.Logger"
access_log_format = '%(h)s "%(m)s %({paysieve.route}e)s" %(s)s %(B)s %(M)sms'

# Each worker is a separate process: prometheus-client must keep counters in files
# that /metrics sums. Set before any worker imports prometheus_client (it reads the
# variable at import); the master never imports it before this line.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
_owns_metrics_dir = not _metrics_dir
if _owns_metrics_dir:
    _metrics_dir = tempfile.mkdtemp(prefix="paysieve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


# prometheus-client's own files: <kind>_<pid>.db. Nothing else in the directory is ours.
_METRIC_FILE = re.compile(r"(?:counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def on_starting(server: Any) -> None:
    """Check the configuration before forking; answer unparseable requests in JSON; remove
    metric files a previous run left."""
    from gateway.web import serving

    serving.install()
    # First: a database in the metrics directory is refused before anything opens it.
    _refuse_database_in(Path(_metrics_dir))
    _preflight()
    for stale in Path(_metrics_dir).iterdir():
        if _METRIC_FILE.fullmatch(stale.name):
            stale.unlink(missing_ok=True)


def _preflight() -> None:
    """Stop the master with one line if the configuration cannot start a gateway.

    Without it every worker would fail in create_app, each with its own traceback, and
    gunicorn would keep restarting them.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.app import preflight
    from gateway.config.settings import debug_requested
    from gateway.core.errors import ConfigurationError

    try:
        preflight()
    except (ConfigurationError, SQLAlchemyError) as exc:
        if debug_requested():
            raise
        what = f"configuration: {exc}"
        if isinstance(exc, SQLAlchemyError):
            from gateway.cli.common import explain_database_error

            what = explain_database_error(exc)
        sys.stderr.write(f"paysieve: {what}\n")
        raise SystemExit(1) from None


def _refuse_database_in(metrics_dir: Path) -> None:
    """Stop the master if the SQLite database lives in the metrics directory."""
    from sqlalchemy.engine import make_url

    from gateway.config.settings import load_settings
    from gateway.core.errors import ConfigurationError

    try:
        url = make_url(load_settings().database_url)
    except (ConfigurationError, ValueError):
        return  # _preflight, next, reports a bad configuration in one line
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if Path(url.database).resolve().parent == metrics_dir.resolve():
        sys.stderr.write(
            f"paysieve: PROMETHEUS_MULTIPROC_DIR ({metrics_dir}) holds the SQLite database;"
            " give the metrics their own directory (it is emptied of metric files at start)\n"
        )
        raise SystemExit(1)


def pre_request(worker: Any, req: Any) -> None:
    """Log nothing per request here: gunicorn's default logs the path (ids, tokens) at DEBUG."""


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus-client a worker is gone, so its live gauges stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics directory this configuration created."""
    if _owns_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
