"""The Prometheus configuration and alert rules are valid, and every alert is unit-tested.

promtool comes from Debian's `prometheus` package, which `bangkom test` installs when run as
root; without it these tests fail naming the install command (fixture `promtool` in conftest.py).
"""

import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
CONFIGS = ("prometheus.yml", "prometheus.compose.yml")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120)


def test_alert_rules_pass_promtool_check(promtool):
    result = run(promtool, "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", CONFIGS)
def test_prometheus_configs_pass_promtool_check(promtool, config):
    result = run(promtool, "check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass(promtool):
    result = run(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_is_tested_both_firing_and_quiet():
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in test.get("alert_rule_test", [])]
    untested = []
    for name in alert_names():
        outcomes = {bool(c.get("exp_alerts")) for c in cases if c["alertname"] == name}
        if outcomes != {True, False}:
            untested.append(f"{name}: firing tested={True in outcomes}, quiet tested={False in outcomes}")
    assert not untested, "alerts_test.yml lacks cases:\n" + "\n".join(untested)


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section():
    operations = (PROMETHEUS_DIR.parents[1] / "docs" / "OPERATIONS.md").read_text()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            anchor = rule["annotations"]["runbook"].split("#", 1)[1]
            assert f"### {rule['alert']}" in operations and anchor == rule["alert"].lower(), (
                f"{rule['alert']} has no runbook section in docs/OPERATIONS.md")


@pytest.mark.parametrize("config", CONFIGS)
def test_every_bangkom_target_has_city_and_service_labels(config):
    scrape = {job["job_name"]: job for job in yaml.safe_load((PROMETHEUS_DIR / config).read_text())
              ["scrape_configs"]}["bangkom"]
    # honor_labels keeps the services' own `service`/`city` labels instead of exported_* copies.
    assert scrape["honor_labels"] is True
    relabelled = {r.get("target_label") for r in scrape.get("relabel_configs", [])}
    for static in scrape["static_configs"]:
        labels = set(static.get("labels", {})) | relabelled
        assert {"city", "service"} <= labels, static


def test_local_config_scrapes_every_port_of_the_local_federation():
    scrape = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["scrape_configs"][0]
    targets = {t: s["labels"] for s in scrape["static_configs"] for t in s["targets"]}
    expected = {
        8001: ("national", "evaluation"),
        8011: ("salatiga", "enrollment"), 8012: ("salatiga", "sessions"),
        8021: ("sawahlunto", "enrollment"), 8022: ("sawahlunto", "sessions"),
        8031: ("palu", "enrollment"), 8032: ("palu", "sessions"),
        8041: ("pematangsiantar", "enrollment"), 8042: ("pematangsiantar", "sessions"),
    }
    assert {int(t.rsplit(":", 1)[1]): (labels["city"], labels["service"])
            for t, labels in targets.items()} == expected
