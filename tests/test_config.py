"""Settings: precedence code > env > file > default, ${ENV} expansion, and errors naming key, value and allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import llmobs
from llmobs.config import SETTINGS, ConfigError, render_default_config, resolve


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_is_code_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "sample_rate: 0.3\nqueue_size: 500\nalerts:\n  evaluation_interval_seconds: 30\n")
    env = {"LLMOBS_SAMPLE_RATE": "0.6", "LLMOBS_ALERTS__EVALUATION_INTERVAL_SECONDS": "45"}
    s = resolve({"sample_rate": 0.9}, environ=env, config_file=cfg)
    assert s.sample_rate == 0.9 and s.sources["sample_rate"] == "configure()"
    assert s.alerts.evaluation_interval_seconds == 45.0 and s.sources["alerts.evaluation_interval_seconds"].startswith(
        "env")
    assert s.queue_size == 500 and s.sources["queue_size"].startswith("config file")
    assert s.batch_size == 2000 and s.sources["batch_size"] == "default"


def test_nested_keys_work_in_configure_as_mappings_dunder_and_dots() -> None:
    s = resolve({"alerts": {"evaluation_interval_seconds": 5}, "dashboard__port": 9000,
                 "evaluation.online.sample_rate": 0.2}, environ={})
    assert (s.alerts.evaluation_interval_seconds, s.dashboard.port, s.evaluation.online.sample_rate) == (5.0, 9000, 0.2)
    assert s.get("dashboard.port") == 9000


def test_config_file_expands_env_references_with_defaults(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "database_url: ${DB_URL}\nevaluation:\n  judge:\n    model: ${JUDGE:-small-judge}\n")
    s = resolve(environ={"DB_URL": "sqlite:///x.db"}, config_file=cfg)
    assert s.database_url == "sqlite:///x.db" and s.evaluation.judge.model == "small-judge"
    with pytest.raises(ConfigError, match=r"database_url .*\$\{DB_URL\}.*not set"):
        resolve(environ={}, config_file=cfg)


@pytest.mark.parametrize("env, fragment", [
    ({"LLMOBS_SAMPLE_RATE": "1.5"}, "sample_rate = '1.5' (from env LLMOBS_SAMPLE_RATE) is invalid: must be a number "
                                    "between 0 and 1"),
    ({"LLMOBS_ENABLED": "maybe"}, "enabled = 'maybe' (from env LLMOBS_ENABLED) is invalid: must be true or false"),
    ({"LLMOBS_QUEUE_SIZE": "0"}, "queue_size = '0'"),
    ({"LLMOBS_EVALUATION__BACKEND": "gpt"}, "must be one of 'heuristic', 'embedding', 'llm_judge'"),
])
def test_bad_env_values_fail_with_key_value_source_and_allowed(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(environ=env)
    assert fragment in str(info.value)


def test_bad_config_files_fail_with_the_key_and_the_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'alerts.interval'.*alerts.evaluation_interval_seconds"):
        resolve(environ={}, config_file=write(tmp_path / "a.yaml", "alerts:\n  interval: 3\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(environ={}, config_file=write(tmp_path / "b.yaml", "a: [1,\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolve(environ={}, config_file=write(tmp_path / "c.yaml", "- 1\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        resolve(environ={}, config_file=tmp_path / "missing.yaml")


def test_secrets_are_masked_in_error_messages_and_dumps() -> None:
    with pytest.raises(ConfigError) as info:
        resolve({"dashboard": {"auth": ["admin", "hunter2"]}}, environ={})
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
    s = resolve({"evaluation": {"judge": {"api_key": "sk-verysecret"}}}, environ={})
    assert s.as_dict()["evaluation.judge.api_key"] == "***"


def test_configure_raises_at_once_and_keeps_the_previous_settings() -> None:
    before = llmobs.get_settings().sample_rate
    with pytest.raises(ConfigError, match="sample_rate"):
        llmobs.configure(sample_rate=2)
    with pytest.raises(ConfigError, match="unknown key 'sampel_rate'"):
        llmobs.configure(sampel_rate=0.5)
    with pytest.raises(ConfigError, match="mask"):
        llmobs.configure(mask="not callable")  # type: ignore[arg-type]
    assert llmobs.get_settings().sample_rate == before


def test_the_starter_config_lists_every_setting_with_its_default(tmp_path: Path) -> None:
    text = render_default_config()
    data = yaml.safe_load(text)
    for setting in SETTINGS:
        node = data
        for part in setting.key.split("."):
            node = node[part]
        assert node == setting.default, setting.key
        assert setting.env_name in text
    assert resolve(environ={}, config_file=write(tmp_path / "d.yaml", text)).as_dict() == resolve(environ={}).as_dict()


def test_repository_config_file_is_valid_and_matches_the_declared_defaults() -> None:
    path = Path(__file__).resolve().parent.parent / "config" / "config.yaml"
    assert resolve(environ={}, config_file=path).sample_rate == 1.0


def test_configuration_doc_lists_every_setting_and_env_name() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [s.key for s in SETTINGS if f"`{s.key}`" not in doc or f"`{s.env_name}`" not in doc]
    assert not missing, f"docs/configuration.md lacks {missing}"
