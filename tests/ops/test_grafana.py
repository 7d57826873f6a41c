"""The Grafana dashboard and the alert rules only use metrics that some process exports.

A renamed metric in shared/metrics.py would otherwise leave an empty panel or, worse, an alert
that can never fire. Known names: shared.metrics, FastStream's Kafka Prometheus middleware
(prefix `faststream`), prometheus_client's process_*/python_* collectors, and Prometheus' own
`up` and `ALERTS`.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from faststream.prometheus.container import MetricsContainer
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics import MetricWrapperBase

from shared import metrics

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"

PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def _series_names(families) -> set[str]:
    return {f.name + suffix for f in families for suffix in _SUFFIXES[f.type]}


def exported_names() -> set[str]:
    """Every series name a Bangkom process can expose, derived from the real definitions."""
    ours = [family for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)
            for family in m.describe()]
    faststream = CollectorRegistry()
    MetricsContainer(faststream, metrics_prefix="faststream", custom_label_names=())
    runtime = CollectorRegistry()
    ProcessCollector(registry=runtime)
    PlatformCollector(registry=runtime)
    GCCollector(registry=runtime)
    return (_series_names(ours) | _series_names(faststream.collect()) | _series_names(runtime.collect())
            | PROMETHEUS_OWN)


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# An identifier not glued to a number (10m, 1e3) and not a function call.
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()")
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2", "sum", "min", "max", "avg", "group", "stddev",
    "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label names, functions, keywords left out)."""
    text = _STRINGS.sub('""', expr)
    text = _GRAFANA_VARIABLES.sub("", text)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    return {m for m in _IDENTIFIER.findall(text) if m not in _KEYWORDS}


def dashboard_exprs(dashboard: dict) -> list[str]:
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and query:
            # Grafana's label_values(<selector>, <label>): only the selector is PromQL.
            match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
            exprs.append(match.group(1) if match else query)
    return exprs


def alert_exprs() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule.get("alert") or rule["record"]: rule["expr"] for g in groups for rule in g["rules"]}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


# --- the name extractor itself --------------------------------------------------------------

def test_extractor_finds_metrics_and_skips_labels_functions_and_variables():
    expr = ('histogram_quantile(0.99, sum by (group, le) (rate(a_seconds_bucket{city=~"$city", '
            'x="up or down"}[$__rate_interval]))) > 10 and on () (hour() >= 5) '
            'or b_total unless b_total offset 10m or time() - max by (city) (c_gauge) > 4 * 3600')
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c_gauge"}


def test_a_name_nobody_exports_is_caught():
    unknown = metric_names('sum(rate(bangkom_enrolments_total[5m]))') - exported_names()
    assert unknown == {"bangkom_enrolments_total"}


def test_known_names_include_the_derived_series_of_each_kind():
    names = exported_names()
    assert {"bangkom_build_info", "bangkom_http_requests_total",
            "bangkom_projection_freshness_seconds_bucket", "bangkom_outbox_backlog",
            "faststream_received_processed_messages_total", "process_resident_memory_bytes",
            "python_gc_collections_total", "up"} <= names


# --- the dashboard and the alerts -----------------------------------------------------------

def test_there_is_a_dashboard():
    assert DASHBOARDS, "no dashboard JSON in deploy/grafana/dashboards"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_metric_in_the_dashboard_is_exported(path):
    known = exported_names()
    unknown = {n for e in dashboard_exprs(load(path)) for n in metric_names(e)} - known
    assert not unknown, f"{path.name} queries metrics nobody exports: {sorted(unknown)}"


def test_every_metric_in_the_alert_rules_is_exported():
    known = exported_names()
    unknown = {f"{alert}: {name}" for alert, expr in alert_exprs().items()
               for name in metric_names(expr) - known}
    assert not unknown, f"alerts.yml uses metrics nobody exports: {sorted(unknown)}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_the_dashboard_covers_throughput_lag_errors_freshness_activity_and_outbox(path):
    used = {n for e in dashboard_exprs(load(path)) for n in metric_names(e)}
    assert {
        "bangkom_events_published_total", "bangkom_events_consumed_total",
        "bangkom_consumer_lag_messages", "bangkom_http_requests_total",
        "bangkom_deadletter_messages_total", "bangkom_projection_freshness_seconds_bucket",
        "bangkom_enrollments_total", "bangkom_completions_total", "bangkom_jp_credited_total",
        "bangkom_outbox_backlog", "bangkom_outbox_oldest_age_seconds",
        "bangkom_city_last_event_timestamp_seconds",
    } <= used


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_use_the_provisioned_datasource_and_fit_the_grid(path):
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    dashboard = load(path)
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"], panel["title"]
            assert target["datasource"]["uid"] == uid, panel["title"]


def test_the_dashboard_provider_reads_the_folder_compose_mounts():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "bangkom.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(m.startswith("./deploy/grafana/dashboards:") and m.split(":")[1] == path for m in mounts)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_is_valid_promql(path, promtool, tmp_path):
    """promtool parses each query as a recording rule, Grafana's variables filled in."""
    fill = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$city": ".*"}
    rules = []
    for i, expr in enumerate(dashboard_exprs(load(path))):
        for variable, value in fill.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unfilled Grafana variable in {expr}"
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    file = tmp_path / "dashboard_rules.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
