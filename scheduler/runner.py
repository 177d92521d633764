"""APScheduler wiring: the jobs of ``llmobs.scheduler.jobs`` on a BlockingScheduler (``llmobs scheduler``) or a
BackgroundScheduler inside an application, run only by the process that holds the database lease.

The lease is renewed every third of the alert interval and lives one interval, so if the leader dies another
process takes over within about 1.3 intervals. Alert state transitions are conditional updates as well, so even
two processes evaluating at once notify each transition once.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable

from llmobs.scheduler import jobs
from llmobs.scheduler.lease import Lease

log = logging.getLogger("llmobs.scheduler")

JOB_LEASE = "llmobs.lease"
JOB_ALERTS = "llmobs.alerts.evaluate"
JOB_ONLINE_EVALUATION = "llmobs.evaluation.online"
JOB_RETENTION = "llmobs.retention"
DEFAULT_RETENTION_INTERVAL_SECONDS = 3600.0
MIN_LEASE_RENEW_SECONDS = 0.25


@dataclass(frozen=True)
class SchedulerOptions:
    """What the scheduler runs and how often; ``from_settings`` reads them from the llmobs settings."""

    interval_seconds: float
    alerts_enabled: bool = True
    retention_days: float = 30.0
    retention_interval_seconds: float = DEFAULT_RETENTION_INTERVAL_SECONDS
    online_evaluation: bool = False
    online_sample_rate: float = 0.1
    online_backend: str = "heuristic"
    default_rules: bool = True

    @classmethod
    def from_settings(cls, **overrides: Any) -> "SchedulerOptions":
        """Options from ``alerts.*``, ``retention_days`` and ``evaluation.online.*``; keywords override them."""
        from llmobs._state import settings

        s = settings()
        values: dict[str, Any] = {
            "interval_seconds": float(s.alerts.evaluation_interval_seconds),
            "alerts_enabled": bool(s.alerts.enabled),
            "retention_days": float(s.retention_days),
            "online_evaluation": bool(s.evaluation.online.enabled),
            "online_sample_rate": float(s.evaluation.online.sample_rate),
            "online_backend": str(s.evaluation.backend),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        options = cls(**values)
        if options.interval_seconds <= 0:
            raise ValueError(f"scheduler interval_seconds = {options.interval_seconds!r} is invalid: must be > 0")
        return options


class SchedulerService:
    """The jobs of one scheduler process plus its lease; ``register`` puts them on an APScheduler scheduler.

    >>> service = SchedulerService(SchedulerOptions.from_settings())   # doctest: +SKIP
    >>> service.register(BackgroundScheduler()).start()               # doctest: +SKIP
    """

    def __init__(self, options: SchedulerOptions, *, manager: Any = None, database_url: str | None = None,
                 holder: str | None = None, lease_ttl_seconds: float | None = None) -> None:
        from llmobs.alerts.manager import AlertManager

        self.options = options
        self.manager = manager if manager is not None else AlertManager(database_url)
        self.engine = self.manager.engine
        self.lease = Lease(self.engine, ttl_seconds=lease_ttl_seconds or options.interval_seconds, holder=holder)
        self.online: Callable[[], Any] | None = None
        self.ticks = 0
        self._stopped = threading.Event()
        if options.alerts_enabled and options.default_rules:
            created = self.manager.ensure_default_rules()
            if created:
                log.info("llmobs scheduler: created default rules %s", ", ".join(r.rule_id for r in created))

    # --- jobs (each runs only on the lease holder) ----------------------------------------------------------------

    def renew_lease(self) -> bool:
        """Take or renew the lease; the job that keeps leadership between ticks."""
        if self._stopped.is_set():
            return False
        try:
            return self.lease.acquire()
        except Exception:  # noqa: BLE001 - a database hiccup: try again at the next renewal
            log.exception("llmobs scheduler: lease renewal failed")
            return False

    def alert_tick(self) -> list[Any]:
        """Evaluate every enabled rule if this process holds the lease."""
        if not self.renew_lease():
            return []
        self.ticks += 1
        try:
            return jobs.evaluate_alerts(self.manager)
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.exception("llmobs scheduler: alert evaluation failed")
            return []

    def online_evaluation_tick(self) -> Any:
        """Score new generations if this process holds the lease."""
        if self.online is None or not self.renew_lease():
            return None
        try:
            return self.online()
        except Exception:  # noqa: BLE001
            log.exception("llmobs scheduler: online evaluation failed")
            return None

    def retention_tick(self) -> dict[str, int] | None:
        """Delete data older than ``retention_days`` if this process holds the lease."""
        if not self.renew_lease():
            return None
        try:
            return jobs.apply_retention(self.engine, self.options.retention_days)
        except Exception:  # noqa: BLE001
            log.exception("llmobs scheduler: retention failed")
            return None

    # --- wiring ---------------------------------------------------------------------------------------------------

    def register(self, scheduler: Any) -> Any:
        """Add the jobs to an APScheduler 3 scheduler (fixed ids, replace_existing, coalesce, one instance each,
        a misfire grace time of at least one interval) and return the scheduler."""
        import datetime as dt

        interval = self.options.interval_seconds
        now = dt.datetime.now(dt.timezone.utc)

        def add(func: Callable[[], Any], job_id: str, seconds: float, first_in: float = 0.0) -> None:
            scheduler.add_job(func, "interval", seconds=seconds, id=job_id, name=job_id, replace_existing=True,
                              coalesce=True, max_instances=1, misfire_grace_time=max(1, int(seconds * 2) + 1),
                              next_run_time=now + dt.timedelta(seconds=first_in))

        add(self.renew_lease, JOB_LEASE, max(MIN_LEASE_RENEW_SECONDS, interval / 3))
        if self.options.alerts_enabled:
            add(self.alert_tick, JOB_ALERTS, interval)
        else:
            log.info("llmobs scheduler: alerts.enabled is false; no alert evaluation job")
        if self.options.online_evaluation:
            evaluate_spans = jobs.load_online_evaluator()
            if evaluate_spans is not None:
                self.online = jobs.OnlineEvaluation(evaluate_spans, self.options.online_sample_rate,
                                                    self.options.online_backend, interval)
                add(self.online_evaluation_tick, JOB_ONLINE_EVALUATION, interval, first_in=interval)
        add(self.retention_tick, JOB_RETENTION, self.options.retention_interval_seconds,
            first_in=min(60.0, self.options.retention_interval_seconds))
        return scheduler

    def halt(self) -> None:
        """Take no more jobs (a shutdown is under way); the lease is kept until ``stop``."""
        self._stopped.set()

    def stop(self) -> None:
        """Stop taking part: no more renewals, and release the lease so another process takes over at once."""
        self._stopped.set()
        self.lease.release()


def _build(scheduler_cls: type, options: SchedulerOptions | None, manager: Any, database_url: str | None,
           holder: str | None, **overrides: Any) -> tuple[Any, SchedulerService]:
    options = options or SchedulerOptions.from_settings(**overrides)
    service = SchedulerService(options, manager=manager, database_url=database_url, holder=holder)
    scheduler = scheduler_cls(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    service.register(scheduler)
    return scheduler, service


def start_background(*, interval_seconds: float | None = None, manager: Any = None, database_url: str | None = None,
                     holder: str | None = None, options: SchedulerOptions | None = None, **overrides: Any) -> Any:
    """Run the scheduler's jobs in a BackgroundScheduler inside this application and return it (started).

    ``scheduler.shutdown()`` stops the jobs and releases the lease; ``scheduler.llmobs_service`` is the
    SchedulerService (its manager, lease and jobs).

    >>> scheduler = llmobs.scheduler.start_background(interval_seconds=30)   # doctest: +SKIP
    >>> scheduler.shutdown()                                                 # doctest: +SKIP
    """
    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler, service = _build(BackgroundScheduler, options, manager, database_url, holder,
                                interval_seconds=interval_seconds, **overrides)
    scheduler.add_listener(lambda _event: service.stop(), EVENT_SCHEDULER_SHUTDOWN)
    scheduler.llmobs_service = service
    scheduler.start()
    log.info("llmobs scheduler: started in the background (holder %s, every %gs)", service.lease.holder,
             service.options.interval_seconds)
    return scheduler


def run_blocking(*, interval_seconds: float | None = None, manager: Any = None, database_url: str | None = None,
                 holder: str | None = None, options: SchedulerOptions | None = None,
                 install_signal_handlers: bool = True, **overrides: Any) -> int:
    """Run the scheduler in the foreground (``llmobs scheduler``) until SIGTERM or Ctrl-C, then release the lease.

    >>> run_blocking(interval_seconds=60)   # doctest: +SKIP
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler, service = _build(BlockingScheduler, options, manager, database_url, holder,
                                interval_seconds=interval_seconds, **overrides)

    def stop(signum: int, _frame: Any) -> None:
        log.info("llmobs scheduler: %s received, stopping", signal.Signals(signum).name)
        service.halt()
        if scheduler.running:
            scheduler.shutdown(wait=True)  # let a running tick finish before the lease is released

    if install_signal_handlers and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    log.info("llmobs scheduler: running (holder %s, alert interval %gs); stop with Ctrl-C or SIGTERM",
             service.lease.holder, service.options.interval_seconds)
    try:
        scheduler.start()
    except KeyboardInterrupt:
        service.halt()
        if scheduler.running:
            scheduler.shutdown(wait=True)
    finally:
        service.stop()
    return 0


def run_once(*, manager: Any = None, database_url: str | None = None) -> list[Any]:
    """One alert tick without a scheduler or lease (``llmobs scheduler --once``, cron jobs, tests)."""
    from llmobs.alerts.manager import AlertManager

    manager = manager if manager is not None else AlertManager(database_url)
    manager.ensure_default_rules()
    return jobs.evaluate_alerts(manager)
