"""BANGKOM_ENV_FILE: docker compose hands a service its Kafka principal in a file of its own."""

import pytest

from shared.settings import Settings


def test_a_file_of_bangkom_lines_fills_settings_and_the_environment_wins(tmp_path, monkeypatch):
    path = tmp_path / "kafka.env"
    path.write_text("BANGKOM_KAFKA_SASL_USERNAME=palu-enrollment\nBANGKOM_KAFKA_BOOTSTRAP=k:9092\n")
    monkeypatch.setenv("BANGKOM_KAFKA_BOOTSTRAP", "env:1")
    settings = Settings(_env_file=path, env_file=str(path))
    assert settings.kafka_sasl_username == "palu-enrollment"
    assert settings.kafka_bootstrap == "env:1"


def test_a_missing_env_file_is_refused_at_once_naming_the_setting(tmp_path):
    with pytest.raises(ValueError, match=r"(?s)env_file.*cannot read .*absent\.env"):
        Settings(env_file=str(tmp_path / "absent.env"))
