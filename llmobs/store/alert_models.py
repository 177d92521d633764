"""SQLModel tables of the alert engine: rules, alert state machine rows, delivery attempts, and the scheduler lease.

``alerts.open_rule_id`` equals ``rule_id`` while an alert is open (pending or firing) and is NULL once it is
closed; its unique constraint makes a second open alert for one rule impossible, even with two evaluators.
``alerts.seq`` is bumped by every transition, which is done as ``UPDATE ... WHERE id = ? AND seq = ?``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from llmobs.store.models import UTCDateTime

ALERT_STATES = ("pending", "firing", "resolved")


def _col(type_: Any, *, index: bool = False) -> Any:
    """A nullable column (SQLModel needs a fresh Column per field)."""
    return Field(default=None, sa_column=Column(type_, index=index, nullable=True))


def _req(type_: Any, default: Any = None) -> Any:
    """A NOT NULL column with an optional Python-side default."""
    if default is None:
        return Field(sa_column=Column(type_, nullable=False))
    return Field(default=default, sa_column=Column(type_, nullable=False))


class AlertRuleRow(SQLModel, table=True):
    """One alert rule as configured (see ``llmobs.alerts.rules.AlertRule`` for the meaning of each field)."""

    __tablename__ = "alert_rules"

    rule_id: str = Field(sa_column=Column(String(128), primary_key=True))
    name: str = _req(String(256))
    metric_name: str = _req(String(128))
    condition: str = _req(String(16))
    threshold: float = _req(Float())
    severity: str = _req(String(16))
    window_minutes: float = _req(Float())
    for_minutes: float = _req(Float(), 0.0)
    cooldown_minutes: float = _req(Float())
    min_requests: int = _req(Integer(), 1)
    baseline_windows: int = _req(Integer(), 6)
    filters: Optional[dict[str, Any]] = _col(JSON(none_as_null=True))
    channels: Optional[list[str]] = _col(JSON(none_as_null=True))
    enabled: bool = _req(Boolean(), True)
    description: Optional[str] = _col(Text())
    no_data: str = _req(String(16), "ok")
    silenced_until: Optional[dt.datetime] = _col(UTCDateTime())
    created_at: dt.datetime = _req(UTCDateTime())
    updated_at: dt.datetime = _req(UTCDateTime())


class AlertRow(SQLModel, table=True):
    """One alert of one rule: pending -> firing -> resolved; every transition bumps ``seq``."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("open_rule_id", name="uq_alerts_open_rule"),
                      Index("ix_alerts_rule_started", "rule_id", "started_at"),
                      Index("ix_alerts_started", "started_at"),
                      Index("ix_alerts_state", "state"))

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    rule_id: str = _req(String(128))
    open_rule_id: Optional[str] = _col(String(128))
    rule_name: str = _req(String(256))
    severity: str = _req(String(16))
    state: str = _req(String(16))
    seq: int = _req(Integer(), 0)
    metric_name: str = _req(String(128))
    condition: str = _req(String(16))
    threshold: float = _req(Float())
    value: Optional[float] = _col(Float())
    peak_value: Optional[float] = _col(Float())
    request_count: Optional[int] = _col(Integer())
    message: Optional[str] = _col(Text())
    started_at: dt.datetime = _req(UTCDateTime())
    fired_at: Optional[dt.datetime] = _col(UTCDateTime())
    resolved_at: Optional[dt.datetime] = _col(UTCDateTime())
    last_evaluated_at: Optional[dt.datetime] = _col(UTCDateTime())
    last_notified_at: Optional[dt.datetime] = _col(UTCDateTime())
    notification_count: int = _req(Integer(), 0)
    acknowledged_at: Optional[dt.datetime] = _col(UTCDateTime())
    acknowledged_by: Optional[str] = _col(String(256))


class AlertNotificationRow(SQLModel, table=True):
    """One delivery attempt of one alert transition on one channel (sent or failed, with the error)."""

    __tablename__ = "alert_notifications"
    __table_args__ = (Index("ix_alert_notifications_alert", "alert_id"),
                      Index("ix_alert_notifications_created", "created_at"))

    id: Optional[int] = Field(default=None, sa_column=Column(Integer(), primary_key=True, autoincrement=True))
    alert_id: str = _req(String(32))
    rule_id: str = _req(String(128))
    channel: str = _req(String(64))
    channel_type: Optional[str] = _col(String(32))
    state: str = _req(String(16))
    status: str = _req(String(16))
    attempts: int = _req(Integer(), 0)
    error: Optional[str] = _col(Text())
    http_status: Optional[int] = _col(Integer())
    idempotency_key: str = _req(String(128))
    duration_ms: Optional[float] = _col(Float())
    sent_at: Optional[dt.datetime] = _col(UTCDateTime())
    created_at: dt.datetime = _req(UTCDateTime())


class SchedulerLeaseRow(SQLModel, table=True):
    """Who runs the scheduler's jobs now: the holder renews ``expires_at``; anyone may take an expired lease."""

    __tablename__ = "scheduler_leases"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    holder: Optional[str] = _col(String(128))
    token: int = _req(Integer(), 0)
    acquired_at: Optional[dt.datetime] = _col(UTCDateTime())
    renewed_at: Optional[dt.datetime] = _col(UTCDateTime())
    expires_at: Optional[dt.datetime] = _col(UTCDateTime())
