"""The scheduler process: alert evaluation, online evaluation and retention jobs (APScheduler).

``llmobs scheduler`` runs them in the foreground; ``llmobs.scheduler.start_background()`` inside an application.
Several scheduler processes may share one database: a lease in the database lets one of them run the jobs.
"""

from llmobs.scheduler.lease import Lease
from llmobs.scheduler.runner import (
    SchedulerOptions,
    SchedulerService,
    run_blocking,
    run_once,
    start_background,
)

__all__ = ["Lease", "SchedulerOptions", "SchedulerService", "run_blocking", "run_once", "start_background"]
