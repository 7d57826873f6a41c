"""`bangkom city add`'s refusals and the run directory's list of cities, without servers."""

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from deploy.cli import app
from deploy.local.federation import (CityError, Federation, RunState, city_problem,
                                     demo_city_name, layout)
from shared.topics import CITIES


def _federation(root, **kwargs) -> Federation:
    return Federation(console=Console(file=open("/dev/null", "w")), state=RunState(root=root),
                      offset=4000, **kwargs)


@pytest.mark.parametrize("slug, reason", [
    ("national", "national node"), ("palu", "already in"), ("Kota Batu", "not a valid name"),
    ("b", "not a valid name"), ("9batu", "not a valid name"), ("batu_", "not a valid name"),
    ("x" * 42, "not a valid name")])
def test_a_bad_slug_is_refused_naming_the_reason(slug, reason):
    assert reason in city_problem(slug, CITIES)


def test_a_good_slug_passes_and_the_demo_cities_are_only_the_default(tmp_path):
    assert city_problem("kota-batu", CITIES) is None
    state = RunState(root=tmp_path)
    assert state.cities() == CITIES  # no cities.json: the demo's four
    assert state.city_entries()[3] == {"slug": "pematangsiantar", "name": "Kota Pematangsiantar"}
    state.set_cities([*state.city_entries(), {"slug": "batu", "name": "Kota Batu"}])
    fed = _federation(tmp_path)
    assert fed.cities == (*CITIES, "batu")
    # a fifth city's ports follow the others', and no two components share one
    assert [s.port for s in fed.services if s.node == "batu"] == [8051 + 4000, 8052 + 4000]
    ports = [p for ps in fed.ports().values() for p in ps]
    assert len(ports) == len(set(ports))
    assert fed.broker_port("batu") == fed.kafka_port + 500
    assert layout(0, ("a1",))[1].name == "a1-enrollment" and demo_city_name("kota-batu") == "Kota Kota Batu"


def test_city_add_refuses_without_changing_anything(tmp_path):
    fed = _federation(tmp_path)
    for slug, name, reason in (("palu", "", "already in"), ("batu", "\n", "--name"),
                               ("batu", "", "not running")):
        with pytest.raises(CityError, match=reason):
            fed.add_city(slug, name)
        assert not (tmp_path / "cities.json").exists() and fed.cities == CITIES
    single = _federation(tmp_path / "single", single_broker=True)
    with pytest.raises(CityError, match="single-broker"):
        single.add_city("batu")


def test_the_cli_says_nothing_was_changed_and_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("BANGKOM_RUN_DIR", str(tmp_path))
    done = CliRunner().invoke(app, ["city", "add", "national"])
    assert done.exit_code == 2 and "nothing was changed" in done.output, done.output
    assert not (tmp_path / "cities.json").exists()
    listed = CliRunner().invoke(app, ["city", "list"])
    assert all(city in listed.output for city in CITIES), listed.output
    (tmp_path / "cities.json").write_text(json.dumps(
        {"cities": [{"slug": "batu", "name": "Kota Batu"}]}))
    assert "Kota Batu" in CliRunner().invoke(app, ["city", "list"]).output


def _bangkom_targets(config: dict) -> dict[str, dict]:
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "bangkom")
    return {t: s["labels"] for s in job["static_configs"] for t in s["targets"]}


def test_prometheus_is_given_each_city_of_the_run_directory(tmp_path, promtool):
    import subprocess

    import yaml

    from deploy.local.federation import PROMETHEUS_CONFIG

    fed = Federation(console=Console(file=open("/dev/null", "w")), state=RunState(root=tmp_path),
                     offset=0)
    # the demo's four: exactly the committed file's targets, so the file is what runs
    assert _bangkom_targets(fed.prometheus_config()) == _bangkom_targets(
        yaml.safe_load(PROMETHEUS_CONFIG.read_text()))
    fed.state.set_cities([*fed.state.city_entries(), {"slug": "batu", "name": "Kota Batu"}])
    grown = Federation(console=Console(file=open("/dev/null", "w")), state=fed.state, offset=0)
    path = grown.write_prometheus_config()
    targets = _bangkom_targets(json.loads(path.read_text()))
    assert targets["127.0.0.1:8051"] == {"city": "batu", "service": "enrollment"}
    assert targets["127.0.0.1:8052"] == {"city": "batu", "service": "sessions"} and len(targets) == 11
    checked = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_nation_reads_every_citys_token_hashes_from_a_file_only_its_owner_reads(tmp_path):
    from shared.http import hash_token

    fed = _federation(tmp_path)
    path = fed.write_city_token_hashes()
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_text().split()
    tokens = fed.tokens()
    assert sorted(lines) == sorted(f"{city}:{hash_token(token)}" for city in CITIES
                                   for token in tokens[city].values())
