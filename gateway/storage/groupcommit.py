"""Group commit: deliveries that arrive while one transaction commits share the next one.

A durable commit waits for the disk (SQLite ``synchronous=FULL``, PostgreSQL
``synchronous_commit=on``): one flush per delivery caps a gateway at the disk's
flush rate. Here the first thread to find no write running becomes the writer: it
takes every delivery queued so far (its own included), writes them in one
transaction, commits once, and wakes their threads. Deliveries that arrive meanwhile
queue for the next transaction. No thread returns before the transaction holding its
delivery has committed, so an acknowledged event is as durable as before; under
load the flushes are shared. There is no background thread: a writer is always a
request thread whose own delivery is in the batch, so nothing is left behind when a
worker stops.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

Job = TypeVar("Job")


class _Ticket(Generic[Job]):
    __slots__ = ("done", "error", "job")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.done = False
        self.error: BaseException | None = None


class GroupCommit(Generic[Job]):
    """Write queued jobs in batches: a few writers per process at a time, the rest wait."""

    def __init__(
        self,
        write: Callable[[list[Job]], None],
        gate: Callable[[], AbstractContextManager[None]],
        *,
        writers: int = 1,
        max_batch: int = 64,
    ) -> None:
        """``write`` stores a batch in one transaction; ``gate`` is held around it.

        ``writers`` transactions may be open at once: a database that commits writers in
        parallel (PostgreSQL) does not hold a delivery behind a slow transaction then.
        """
        self._write = write
        self._gate = gate
        self._max_writers = writers
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Ticket[Job]] = []
        self._writers = 0

    def submit(self, job: Job) -> None:
        """Return once the transaction holding job has committed; raise what stopped it."""
        ticket = _Ticket(job)
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done:
                if self._writers >= self._max_writers:
                    self._cond.wait()
                    continue
                self._writers += 1
                self._cond.release()
                try:
                    self._lead()
                finally:
                    self._cond.acquire()
                    self._writers -= 1
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error

    def _take(self) -> list[_Ticket[Job]]:
        with self._cond:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        return batch

    def _lead(self) -> None:
        # Called with a writer's place taken. Another writer may have taken this
        # thread's delivery meanwhile; then the batch is empty and nothing is written.
        batch: list[_Ticket[Job]] = []
        taken = False
        try:
            with self._gate():
                # Taken once the gate is held: deliveries that queued while this
                # thread waited for another process's write join this transaction.
                batch, taken = self._take(), True
                if batch:
                    self._write([ticket.job for ticket in batch])
        except BaseException as exc:
            # The gate timed out (nothing taken yet: fail what is queued, as each
            # would time out in turn) or write() raised for the batch as a whole.
            if not taken:
                batch = self._take()
            for ticket in batch:
                ticket.error = _own_copy(exc)
        finally:
            with self._cond:
                for ticket in batch:
                    ticket.done = True


def _own_copy(exc: BaseException) -> BaseException:
    """Return an exception each waiting thread can raise without sharing a traceback."""
    try:
        duplicate = copy.copy(exc)
    except Exception:  # pragma: no cover - an exception type that cannot be copied
        return exc
    duplicate.__cause__ = exc.__cause__
    duplicate.__traceback__ = None
    return duplicate
