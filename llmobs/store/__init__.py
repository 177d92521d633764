"""The data contract: SQLModel tables and the engine that holds them."""

from llmobs.store.db import ensure_schema, get_engine, make_engine, session_scope
from llmobs.store.models import Span, Trace, UTCDateTime

__all__ = ["Span", "Trace", "UTCDateTime", "ensure_schema", "get_engine", "make_engine", "session_scope"]
