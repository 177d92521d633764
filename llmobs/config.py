"""Settings: each declared once (key, type, default, limits, doc).

Precedence is code (``configure()``) > environment (``LLMOBS_*``, nested keys joined by a double
underscore) > config file (``config/config.yaml`` or ``LLMOBS_CONFIG_FILE``) > default. A bad value
fails at once with the key, the value, where it came from and what is allowed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

ENV_PREFIX = "LLMOBS_"
CONFIG_FILE_ENV = "LLMOBS_CONFIG_FILE"
DEFAULT_CONFIG_FILE = Path("config") / "config.yaml"
# Env names that belong to llmobs tooling rather than to a setting.
RESERVED_ENV = {"LLMOBS_CONFIG_FILE", "LLMOBS_TEST_POSTGRES_URL"}


class ConfigError(ValueError):
    """A setting has a value llmobs cannot use; the message names key, value, source and what is allowed."""


@dataclass(frozen=True)
class Setting:
    """One declared setting: its dotted key, type, default and limits."""

    key: str
    type: str  # "bool" | "int" | "float" | "str" | "mapping" | "list"
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    secret: bool = False

    @property
    def env_name(self) -> str:
        """The environment variable that sets this key, e.g. ``LLMOBS_ALERTS__EVALUATION_INTERVAL_SECONDS``."""
        return ENV_PREFIX + self.key.upper().replace(".", "__")

    def allowed(self) -> str:
        """Human text for what values are allowed."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
                "mapping": "a mapping", "list": "a list"}[self.type]
        if self.minimum is not None and self.maximum is not None:
            kind += f" between {self.minimum:g} and {self.maximum:g}"
        elif self.minimum is not None:
            kind += f" >= {self.minimum:g}"
        return kind + (" or null" if self.nullable else "")


DEFAULT_THRESHOLDS: dict[str, Any] = {
    "response_time_ms": {"warning": 5000, "critical": 15000},
    "success_rate": {"warning": 0.95, "critical": 0.85},
}

SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "str", "sqlite:///data/llmobs.db",
            "SQLAlchemy URL; sqlite:///path (embedded, default) or postgresql+psycopg://user@host/db", secret=True),
    Setting("enabled", "bool", True, "Record spans at all; false makes @observe a pass-through"),
    Setting("sample_rate", "float", 1.0, "Share of traces kept (whole traces are kept or dropped)", minimum=0, maximum=1),
    Setting("capture_input", "bool", True, "Record function arguments"),
    Setting("capture_output", "bool", True, "Record return values"),
    Setting("max_field_chars", "int", 20000, "Longest input/output/metadata field stored, in characters", minimum=64),
    Setting("redact_secrets", "bool", True, "Replace API keys, bearer tokens and e-mail addresses with [REDACTED]"),
    Setting("queue_size", "int", 100_000, "Most finished spans held in memory; past it the oldest are dropped and counted",
            minimum=1),
    Setting("batch_size", "int", 2000, "Most spans written in one database transaction", minimum=1),
    Setting("flush_interval_seconds", "float", 1.0, "Longest time a finished span waits before being written",
            minimum=0.01),
    Setting("shutdown_timeout_seconds", "float", 10.0, "How long flush at exit or SIGTERM may take", minimum=0),
    Setting("install_signal_handlers", "bool", True, "Flush on SIGTERM when no other handler is installed"),
    Setting("retention_days", "int", 30, "Data older than this is deleted by the scheduler's retention job", minimum=1),
    Setting("monitoring.window_size_minutes", "float", 15.0, "PerformanceTracker sliding window", minimum=0.1),
    Setting("monitoring.max_data_points", "int", 1000, "PerformanceTracker points kept per model", minimum=10),
    Setting("monitoring.anomaly_min_samples", "int", 30, "Points needed before anomalies are reported", minimum=3),
    Setting("monitoring.anomaly_threshold", "float", 6.0, "Robust z-score that counts as an anomaly", minimum=1),
    Setting("monitoring.anomaly_cooldown_seconds", "float", 300.0, "Quiet time after an anomaly per model and metric",
            minimum=0),
    Setting("alerts.enabled", "bool", True, "Evaluate alert rules in the scheduler"),
    Setting("alerts.evaluation_interval_seconds", "float", 60.0, "Seconds between alert evaluation ticks", minimum=1),
    Setting("alerts.default_cooldown_minutes", "float", 10.0, "Re-notification interval of a firing alert", minimum=0),
    Setting("alerts.thresholds", "mapping", DEFAULT_THRESHOLDS, "Default rules created when absent"),
    Setting("alerts.channels", "mapping", {}, "Notification channels by name (email, slack, discord, webhook, log)",
            secret=True),
    Setting("dashboard.host", "str", "127.0.0.1", "Address the dashboard binds"),
    Setting("dashboard.port", "int", 7860, "Port the dashboard binds", minimum=0, maximum=65535),
    Setting("dashboard.auto_refresh_seconds", "float", 30.0, "Dashboard auto-refresh period; 0 switches it off",
            minimum=0),
    Setting("dashboard.auth", "str", None, "user:password required by the dashboard", nullable=True, secret=True),
    Setting("evaluation.backend", "str", "heuristic", "Default evaluator backend",
            choices=("heuristic", "embedding", "llm_judge")),
    Setting("evaluation.online.enabled", "bool", False, "Score new generations from the scheduler"),
    Setting("evaluation.online.sample_rate", "float", 0.1, "Share of new generations scored online", minimum=0,
            maximum=1),
    Setting("evaluation.judge.base_url", "str", None, "OpenAI-compatible endpoint of the judge model", nullable=True),
    Setting("evaluation.judge.api_key", "str", None, "API key of the judge endpoint", nullable=True, secret=True),
    Setting("evaluation.judge.model", "str", "gpt-4o-mini", "Judge model name"),
    Setting("evaluation.judge.timeout_seconds", "float", 30.0, "Judge request timeout", minimum=0.1),
    Setting("evaluation.judge.max_concurrency", "int", 4, "Parallel judge requests", minimum=1),
    Setting("pricing", "mapping", {}, "Per-model price overrides: name or glob -> input/output/cached per million"),
)

SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
SECTIONS: frozenset[str] = frozenset(k.rsplit(".", 1)[0] for k in SETTINGS_BY_KEY if "." in k) | frozenset(
    ".".join(k.split(".")[:i]) for k in SETTINGS_BY_KEY for i in range(1, k.count(".")))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _fail(setting: Setting | None, key: str, value: Any, source: str, why: str) -> ConfigError:
    shown = "***" if setting is not None and setting.secret and value not in (None, "") else repr(value)
    return ConfigError(f"llmobs config: {key} = {shown} (from {source}) is invalid: {why}")


def coerce(setting: Setting, value: Any, source: str) -> Any:
    """Convert ``value`` (a string from env, or YAML/Python data) to the setting's type, or raise ConfigError.

    >>> coerce(SETTINGS_BY_KEY["sample_rate"], "0.5", "env").__class__.__name__
    'float'
    """
    key = setting.key
    if value is None:
        if setting.nullable:
            return None
        raise _fail(setting, key, value, source, f"must be {setting.allowed()}")
    kind = setting.type
    try:
        if kind == "bool":
            if isinstance(value, bool):
                out: Any = value
            elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                out = value.strip().lower() in _TRUE
            else:
                raise ValueError
        elif kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out = int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if out != out:
                raise ValueError
        elif kind == "str":
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            out = str(value)
        elif kind in ("mapping", "list"):
            if isinstance(value, str):
                value = yaml.safe_load(value)
            expected = dict if kind == "mapping" else list
            if not isinstance(value, expected):
                raise ValueError
            out = value
        else:  # pragma: no cover - declaration error
            raise AssertionError(kind)
    except (TypeError, ValueError, yaml.YAMLError):
        raise _fail(setting, key, value, source, f"must be {setting.allowed()}") from None
    if setting.choices and out not in setting.choices:
        raise _fail(setting, key, value, source, f"must be {setting.allowed()}")
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        if (setting.minimum is not None and out < setting.minimum) or (
                setting.maximum is not None and out > setting.maximum):
            raise _fail(setting, key, value, source, f"must be {setting.allowed()}")
    return out


def expand_env_refs(value: Any, source: str, key: str = "", environ: Mapping[str, str] | None = None) -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in YAML strings with environment values, recursively.

    A reference to an unset variable without a default is an error naming the key and the variable.
    """
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"llmobs config: {key or '<root>'} (from {source}) refers to ${{{name}}}, "
                              "which is not set in the environment; set it or write ${" + name + ":-default}")
        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: expand_env_refs(v, source, f"{key}.{k}" if key else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env_refs(v, source, f"{key}[{i}]", env) for i, v in enumerate(value)]
    return value


def _flatten(data: Mapping[str, Any], source: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted key, value) for nested mappings, stopping at declared keys (mapping-typed settings stay whole)."""
    for raw_key, value in data.items():
        key = f"{prefix}{raw_key}"
        if key in SETTINGS_BY_KEY:
            yield key, value
        elif key in SECTIONS and isinstance(value, Mapping):
            yield from _flatten(value, source, key + ".")
        elif key in SECTIONS and value is None:
            continue
        else:
            near = sorted(k for k in SETTINGS_BY_KEY if k.startswith(prefix))
            raise ConfigError(f"llmobs config: unknown key {key!r} (from {source}); allowed keys here: "
                              + ", ".join(near))


def read_config_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read a YAML config file into {dotted key: raw value}, expanding ``${ENV}`` references."""
    source = f"config file {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"llmobs config: cannot read {source}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"llmobs config: {source} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"llmobs config: {source} must hold a mapping of settings, got {type(data).__name__}")
    return dict(_flatten(expand_env_refs(dict(data), source, environ=environ), source))


def read_env(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Collect LLMOBS_* variables that name a setting: {dotted key: (env name, raw value)}."""
    by_env = {s.env_name: s.key for s in SETTINGS}
    found: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and name in by_env:
            found[by_env[name]] = (name, value)
    if "LLMOBS_UI_AUTH" in environ and "dashboard.auth" not in found:
        found["dashboard.auth"] = ("LLMOBS_UI_AUTH", environ["LLMOBS_UI_AUTH"])
    return found


class Section:
    """Read-only attribute view of one part of the settings, e.g. ``settings.alerts.evaluation_interval_seconds``."""

    __slots__ = ("_values", "_prefix")

    def __init__(self, values: Mapping[str, Any], prefix: str = "") -> None:
        self._values = values
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        key = self._prefix + name
        if key in self._values:
            return self._values[key]
        if key in SECTIONS:
            return Section(self._values, key + ".")
        raise AttributeError(f"llmobs has no setting {key!r}")

    def __repr__(self) -> str:
        return f"Section({self._prefix.rstrip('.') or '<root>'})"


class Settings(Section):
    """All resolved settings, with where each value came from (``sources``)."""

    __slots__ = ("sources", "config_file")

    def __init__(self, values: dict[str, Any], sources: dict[str, str], config_file: str | None) -> None:
        super().__init__(values)
        self.sources = sources
        self.config_file = config_file

    def get(self, key: str) -> Any:
        """Value of a dotted key, e.g. ``settings.get("alerts.evaluation_interval_seconds")``."""
        if key not in SETTINGS_BY_KEY:
            raise ConfigError(f"llmobs config: unknown key {key!r}")
        return self._values[key]

    def as_dict(self, mask_secrets: bool = True) -> dict[str, Any]:
        """All values by dotted key; secrets shown as ``***`` unless ``mask_secrets`` is false."""
        return {k: ("***" if mask_secrets and SETTINGS_BY_KEY[k].secret and v else v) for k, v in self._values.items()}


def resolve(overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None,
            config_file: str | os.PathLike[str] | None = None) -> Settings:
    """Build Settings from defaults, the config file, the environment and code overrides (in rising precedence).

    ``overrides`` takes dotted keys or nested mappings: ``{"alerts": {"evaluation_interval_seconds": 5}}``.

    >>> resolve({"sample_rate": 0.5}, environ={}).sample_rate
    0.5
    """
    env = os.environ if environ is None else environ
    values = {s.key: s.default for s in SETTINGS}
    sources = {s.key: "default" for s in SETTINGS}
    path: str | None = None
    if config_file is not None:
        path = str(config_file)
    elif env.get(CONFIG_FILE_ENV):
        path = env[CONFIG_FILE_ENV]
    elif DEFAULT_CONFIG_FILE.is_file():
        path = str(DEFAULT_CONFIG_FILE)
    if path is not None:
        for key, raw in read_config_file(path, env).items():
            values[key] = coerce(SETTINGS_BY_KEY[key], raw, f"config file {path}")
            sources[key] = f"config file {path}"
    for key, (name, raw) in read_env(env).items():
        values[key] = coerce(SETTINGS_BY_KEY[key], raw, f"env {name}")
        sources[key] = f"env {name}"
    if overrides:
        for key, raw in _flatten(_nest_dunder(overrides), "configure()"):
            values[key] = coerce(SETTINGS_BY_KEY[key], raw, "configure()")
            sources[key] = "configure()"
    return Settings(values, sources, path)


def _nest_dunder(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``alerts__evaluation_interval_seconds=5`` as well as dotted keys and nested mappings in configure()."""
    return {key.replace("__", "."): value for key, value in overrides.items()}


def render_default_config() -> str:
    """The starter ``config/config.yaml`` text: every setting with its default and a comment, for ``llmobs init``."""
    lines = ["# llmobs configuration. Precedence: configure() > env LLMOBS_* > this file > defaults.",
             "# Nested keys map to env names with a double underscore, e.g. LLMOBS_ALERTS__EVALUATION_INTERVAL_SECONDS.",
             "# Strings may use ${ENV_VAR} or ${ENV_VAR:-default} so that secrets stay out of this file.", ""]
    current_section: list[str] = []
    for s in SETTINGS:
        parts = s.key.split(".")
        section, leaf = parts[:-1], parts[-1]
        common = 0
        while common < min(len(section), len(current_section)) and section[common] == current_section[common]:
            common += 1
        if not section and current_section:
            lines.append("")
        for depth in range(common, len(section)):
            if depth == 0:
                lines.append("")
            lines.append("  " * depth + f"{section[depth]}:")
        current_section = section
        indent = "  " * len(section)
        lines.append(f"{indent}# {s.doc} ({s.allowed()}; env {s.env_name})")
        dumped = yaml.safe_dump({leaf: s.default}, default_flow_style=False, sort_keys=False).rstrip("\n")
        lines.extend(indent + line for line in dumped.splitlines())
    return "\n".join(lines) + "\n"
