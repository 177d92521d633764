"""A leader lease held in the database, so that of several scheduler processes on one database one runs the jobs.

The lease is a ``scheduler_leases`` row (holder id, expiry). It is taken or renewed with one conditional UPDATE
that succeeds only when the row is free, expired, or already ours; whoever gets rowcount 1 holds it until the
expiry. A holder that dies stops renewing, and another process takes the lease once it has expired. Works the
same on SQLite and PostgreSQL (process clocks on one database should agree within a fraction of the TTL).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from typing import Callable

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from llmobs.store.alert_models import SchedulerLeaseRow
from llmobs.store.db import ensure_schema

log = logging.getLogger("llmobs.scheduler")
LEASES = SchedulerLeaseRow.__table__
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def default_holder_id() -> str:
    """A holder id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The named lease in ``scheduler_leases``; ``acquire()`` takes or renews it, ``release()`` gives it up.

    >>> lease = Lease(engine, ttl_seconds=60)        # doctest: +SKIP
    >>> lease.acquire()                               # doctest: +SKIP
    True
    """

    def __init__(self, engine: Engine, name: str = "scheduler", *, ttl_seconds: float = 60.0,
                 holder: str | None = None, clock: Callable[[], dt.datetime] | None = None) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"Lease.ttl_seconds = {ttl_seconds!r} is invalid: must be a number of seconds > 0")
        self.engine = engine
        self.name = name
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.holder = holder or default_holder_id()
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.token: int | None = None
        self._held_until: dt.datetime | None = None
        ensure_schema(engine)

    def _ensure_row(self) -> None:
        with self.engine.connect() as conn:
            if conn.execute(select(LEASES.c.name).where(LEASES.c.name == self.name)).first() is not None:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(LEASES).values(name=self.name, holder=None, token=0, expires_at=EPOCH))
        except IntegrityError:
            pass  # another process created it

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if ours; True while this process holds it."""
        now = self.clock()
        self._ensure_row()
        c = LEASES.c
        mine = c.holder == self.holder
        with self.engine.begin() as conn:
            renewed = conn.execute(update(LEASES).where(c.name == self.name, mine, c.expires_at > now)
                                   .values(renewed_at=now, expires_at=now + self.ttl)).rowcount
            if renewed != 1:
                taken = conn.execute(
                    update(LEASES).where(c.name == self.name,
                                         or_(c.holder.is_(None), c.expires_at <= now, mine))
                    .values(holder=self.holder, token=c.token + 1, acquired_at=now, renewed_at=now,
                            expires_at=now + self.ttl)).rowcount
                if taken != 1:
                    if self._held_until is not None:
                        log.warning("llmobs scheduler: lost the %r lease (%s)", self.name, self.holder)
                    self._held_until = None
                    return False
                self.token = conn.execute(select(c.token).where(c.name == self.name)).scalar_one()
                log.info("llmobs scheduler: %s took the %r lease (token %s)", self.holder, self.name, self.token)
        self._held_until = now + self.ttl
        return True

    def held(self) -> bool:
        """Whether this process held the lease at its last acquire() and it has not expired since."""
        return self._held_until is not None and self.clock() < self._held_until

    def release(self) -> bool:
        """Give the lease up now (on shutdown) so another process takes over at its next try; True if it was ours."""
        now = self.clock()
        c = LEASES.c
        try:
            with self.engine.begin() as conn:
                done = conn.execute(update(LEASES).where(c.name == self.name, c.holder == self.holder)
                                    .values(holder=None, expires_at=now, renewed_at=now)).rowcount
        except Exception:  # noqa: BLE001 - shutting down: the lease expires by itself anyway
            log.exception("llmobs scheduler: releasing the %r lease failed", self.name)
            return False
        self._held_until = None
        if done:
            log.info("llmobs scheduler: %s released the %r lease", self.holder, self.name)
        return bool(done)

    def current_holder(self) -> tuple[str | None, dt.datetime | None]:
        """(holder, expires_at) as stored, for status output and tests."""
        with self.engine.connect() as conn:
            row = conn.execute(select(LEASES.c.holder, LEASES.c.expires_at).where(LEASES.c.name == self.name)).first()
        return (None, None) if row is None else (row[0], row[1])
