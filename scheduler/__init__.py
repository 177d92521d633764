"""The scheduler process: alert evaluation, online evaluation and retention jobs (APScheduler)."""
