"""A real Prometheus (Debian's package) scrapes real services on the real Kafka and FerretDB.

It checks what promtool cannot: that the services expose what the rules and the dashboard
query, under the labels they group by, and that BangkomServiceDown goes pending when a
service really dies.

One city of its own (a fresh node name, so no other test's consumer groups or databases are
touched) with its enrollment and sessions services, plus a national evaluation reading its own
figures database (its own consumer group).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from deploy.local.tools import install_command
import yaml

from deploy.local.process import free_port
from federation_helpers import end_process

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "bangkom-overview.json"
CITY = f"promkota-{uuid.uuid4().hex[:6]}"
SCRAPE_SECONDS = 1


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if not path:
        pytest.fail(f"prometheus is not installed: {install_command(['prometheus'])} (as root)")
    return path


@pytest.fixture(scope="module")
def services(infra, prometheus_binary):
    """(city label, service) -> ServiceProcess, stopped when the module ends: this national
    instance reads every city's topics, and must not go on dead-lettering or sending insights
    while later tests watch those topics."""
    procs = {
        (CITY, "enrollment"): infra.start_service(CITY, "enrollment"),
        (CITY, "sessions"): infra.start_service(CITY, "sessions"),
        ("national", "evaluation"): infra.start_service(
            "national", "evaluation", mongo_db=f"bangkom_national_prom_{uuid.uuid4().hex[:8]}"),
    }
    yield procs
    for proc in procs.values():
        proc.stop()


def scrape_config(services) -> dict:
    return {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s",
                   "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{
            "job_name": "bangkom",
            "honor_labels": True,  # as deploy/prometheus/prometheus.yml
            "static_configs": [
                {"targets": [urlparse(proc.url).netloc], "labels": {"city": city, "service": service}}
                for (city, service), proc in services.items()
            ],
        }],
    }


@pytest.fixture(scope="module")
def prometheus(services, prometheus_binary, tmp_path_factory):
    """The Prometheus API base URL; the server stops with the module."""
    root = tmp_path_factory.mktemp("prometheus")
    config = root / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(services)))
    port = free_port()
    log = (root / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, 60,
                 f"Prometheus not ready; see {root / 'prometheus.log'}")
        yield url
    finally:
        end_process(proc, 15)
        log.close()


def wait_for(check, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.5)


def query(prometheus: str, promql: str) -> list[dict]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    body = response.json()
    assert body["status"] == "success", f"{promql}: {body}"
    return body["data"]["result"]


def labelled(prometheus: str, promql: str) -> set[tuple[str, str]]:
    return {(r["metric"].get("city"), r["metric"].get("service")) for r in query(prometheus, promql)}


def test_every_target_is_up_with_its_city_and_service(prometheus, services):
    def all_up():
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return len(targets) == len(services) and all(t["health"] == "up" for t in targets) and targets

    targets = wait_for(all_up, 60, "not every target came up")
    assert {(t["labels"]["city"], t["labels"]["service"]) for t in targets} == set(services)
    assert labelled(prometheus, 'up{job="bangkom"} == 1') == set(services)


def test_key_series_exist_under_the_labels_the_rules_group_by(prometheus, services):
    wait_for(lambda: labelled(prometheus, "bangkom_build_info") == set(services), 30,
             "bangkom_build_info missing for some service")
    wait_for(lambda: set(services) <= labelled(prometheus, "bangkom_http_requests_total"), 30,
             "bangkom_http_requests_total missing for some service")
    city_services = {key for key in services if key[0] == CITY}
    # The outbox relay sets its gauges after its first round against Kafka and the database.
    wait_for(lambda: labelled(prometheus, "bangkom_outbox_backlog") >= city_services, 60,
             "bangkom_outbox_backlog missing for the city's services")
    wait_for(lambda: labelled(prometheus, "bangkom_outbox_oldest_age_seconds") >= city_services, 30,
             "bangkom_outbox_oldest_age_seconds missing for the city's services")
    assert labelled(prometheus, "process_resident_memory_bytes") == set(services)


def test_no_label_was_renamed_to_exported(prometheus, services):
    wait_for(lambda: labelled(prometheus, "bangkom_build_info") == set(services), 30, "no build info")
    renamed = query(prometheus, '{job="bangkom", __name__=~"bangkom_.*"}')
    clashes = {k for r in renamed for k in r["metric"] if k.startswith("exported_")}
    assert not clashes, f"labels clashed with target labels: {clashes}"
    for city, service in services:
        [series] = query(prometheus, f'bangkom_build_info{{city="{city}", service="{service}"}}')
        assert series["metric"]["node"] == city  # the target's city is the process's node


def test_every_alert_rule_is_loaded_and_evaluates_without_error(prometheus):
    expected = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}

    def evaluated():
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        done = all(r.get("lastEvaluation", "").startswith("20") for r in rules)
        return done and rules

    rules = wait_for(evaluated, 30, "rules were not evaluated")
    assert {r["name"] for r in rules} == expected
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_every_dashboard_query_runs(prometheus, services):
    fill = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$city": ".*"}
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert exprs
    for expr in exprs:
        for variable, value in fill.items():
            expr = expr.replace(variable, value)
        query(prometheus, expr)  # asserts status success
    # The health panel shows every service.
    assert len(query(prometheus, 'max by (city, service) (up{job="bangkom", city=~".*"})')) == len(services)


def test_a_killed_service_makes_service_down_pending(prometheus, services):
    victim = services[(CITY, "sessions")]
    victim.kill()
    try:
        def pending():
            return query(prometheus, f'ALERTS{{alertname="BangkomServiceDown", city="{CITY}", '
                                     f'service="sessions"}}')

        [alert] = wait_for(pending, 30, "BangkomServiceDown did not go pending")
        assert alert["metric"]["alertstate"] == "pending"  # `for: 2m` keeps it from firing yet
        assert labelled(prometheus, 'ALERTS{alertname="BangkomServiceDown"}') == {(CITY, "sessions")}
    finally:
        victim.start(timeout=60)
