"""Storage goes away mid-load: 503 with Retry-After, not ready, then every retry stored once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from tests.support.processes import (
    Delivery,
    Gunicorn,
    Tally,
    deliver,
    figures,
    lifecycle_events,
    running,
    send_all,
    stored_state,
)

pytestmark = pytest.mark.slow

GROUPS = 100  # x 4 = 400 events


class TcpProxy:
    """Forward loopback connections to a server until cut; refuse them while cut."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.open = True
        self.closing = False
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                # As a dead database host looks: the connection drops at once.
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self._close(end)

    def _close(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones."""
        self.open = False
        with self.lock:
            live = list(self.sockets)
        for sock in live:
            self._close(sock)

    def restore(self) -> None:
        """Accept and forward connections again."""
        self.open = True

    def close(self) -> None:
        """Stop listening and drop everything."""
        self.closing = True
        self.cut()
        self.listener.close()
        self.thread.join(timeout=5)


@contextmanager
def outage_switch(
    database_url: str, engine: Engine
) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """Yield the URL the gateway should use and functions that take storage away and back."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        try:
            proxied = url.set(host="127.0.0.1", port=proxy.port)
            yield proxied.render_as_string(hide_password=False), proxy.cut, proxy.restore
        finally:
            proxy.close()
        return
    # SQLite's outage: another process's connection holds the database locked.
    holder = engine.connect()
    holder.exec_driver_sql("COMMIT")  # leave the implicit transaction the listener began

    def lock() -> None:
        holder.exec_driver_sql("BEGIN EXCLUSIVE")

    def unlock() -> None:
        holder.exec_driver_sql("ROLLBACK")

    try:
        yield database_url, lock, unlock
    finally:
        holder.close()


def test_storage_outage_mid_load_loses_nothing_and_doubles_nothing(
    database_url: str,
    engine: Engine,
    dialect: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deliveries, final = lifecycle_events(GROUPS)
    first = deliveries[: len(deliveries) // 3]
    rest = deliveries[len(deliveries) // 3 :]
    with outage_switch(database_url, engine) as (url, cut, restore):
        gateway = Gunicorn(url, workers=2)
        with running(gateway, workdir=tmp_path):
            tally = Tally()
            assert all(send_all([(gateway.url, d) for d in first], tally, concurrency=8))
            refused: list[Delivery] = []
            lock = threading.Lock()

            def once(delivery: Delivery) -> None:
                if not deliver(gateway.url, delivery, tally, retry=False):
                    with lock:
                        refused.append(delivery)

            # The rest is in flight when storage goes away half-way through it.
            with ThreadPoolExecutor(max_workers=8) as pool:
                futures = [pool.submit(once, d) for d in rest]
                while sum(f.done() for f in futures) < len(rest) // 3:
                    time.sleep(0.01)
                cut()
                outage_started = time.perf_counter()
                readyz_during = gateway.get("/readyz")
                # Long enough for in-flight deliveries to meet the outage on SQLite (2 s busy).
                time.sleep(max(0.0, 3.0 - (time.perf_counter() - outage_started)))
                restore()
                for future in futures:
                    future.result()
            outage_503 = tally.codes[503]
            gateway.wait_until(lambda: gateway.get("/readyz").status_code == 200, what="/readyz")
            # As the providers do: deliver again what got a 503, and everything once more.
            assert all(send_all([(gateway.url, d) for d in refused], tally, concurrency=8))
            assert all(send_all([(gateway.url, d) for d in deliveries], tally, concurrency=8))
    stored, found, not_final = stored_state(engine, final)
    figures(
        capsys,
        f"storage-outage/{dialect}",
        events_sent=len(deliveries),
        stored=stored,
        answered_503=outage_503,
        retry_after_missing=tally.retry_after_missing,
        refused_then_retried=len(refused),
        retried=tally.retried,
        readyz_during_outage=readyz_during.status_code,
        other_5xx=tally.five_xx - tally.codes[503],
        not_final=len(not_final),
    )
    assert readyz_during.status_code == 503
    assert outage_503 > 0 and len(refused) > 0
    assert tally.retry_after_missing == 0
    assert tally.five_xx == tally.codes[503]
    assert stored == len(deliveries)
    assert found == GROUPS and not_final == []
