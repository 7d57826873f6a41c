"""The local federation as a new user gets it, end to end, and healing after crashes.

A whole federation (a Kafka broker per city and for the nation, MirrorMaker 2 linking them,
PostgreSQL, FerretDB, nine services, the demo data) runs from the real `bangkom up` in a run
directory of its own, at a port offset, so it can run beside `./dev up` and the other tests.

First the topology: each service is given its own node's broker. Then two cities are cut off
from the nation for two minutes each way, the national broker stopped, then MirrorMaker
stopped: each city runs a whole training year through its APIs meanwhile (the demo data: staff
import, scheduling, enrollment with waitlist and promotion, cancellation, attendance, tests,
completion with JP), every answer 2xx; when the link is back, the national figures equal a
recomputation from the cities' own brokers (nothing lost, nothing counted twice), and insights
the nation produced while they were cut off reach them. A city's own broker stopped: the nation
serves every figure unchanged and shows that city behind until it is heard again (heartbeats).
MirrorMaker SIGKILLed five times while a city imports staff: the national figures again equal
the recomputation.
Then each component in turn is killed with SIGKILL;
`bangkom up` must have every component healthy within 60 s, no process of the checkout may be
left that the state does not know, and the national figures must again equal the recomputation
(nothing lost, nothing counted twice). `bangkom down` at the end leaves no process of the checkout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import stat
import time

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from rich.console import Console

from deploy import demo
from deploy.local.federation import Federation, RunState
from deploy.local.links import link_lag
from deploy.local.infra import list_topics
from deploy.local.process import is_alive, port_holders, run_coroutine
from deploy.local.security import link_principal
from services.evaluation import queries as q
from services.evaluation.figures import Figures
from shared.events import decode
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import CITIES, CITY_STREAMS, NATIONAL, topic
from federation_helpers import environment, run_bangkom

OFFSET = 1000  # below the ephemeral range: no free_port() of another test can take one
HEAL_SECONDS = 60
KILLS_OF_THE_LINK = 5
# Heartbeats every 3 s, a city behind after 30 s of silence: the defaults (15 s, 120 s) scaled
# down so that the test of a city's broker down waits half a minute, not two.
BEHIND_SECONDS = 30
HEARD = {"BANGKOM_HEARTBEAT_SECONDS": "3", "BANGKOM_BEHIND_SECONDS": str(BEHIND_SECONDS)}
# Each test here waits out cut-offs and restarts of a whole federation: more than the default.
pytestmark = pytest.mark.timeout(900)
# The national and a city broker, the links, the database's two halves, a city service and the
# national service.
KILLED = ["kafka-national", "kafka-salatiga", "mirrormaker", "postgres", "ferretdb",
          "salatiga-sessions", "national-evaluation"]




@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    root = tmp_path_factory.mktemp("heal") / "run"
    fed = Federation(console=Console(file=open(os.devnull, "w")), state=RunState(root=root),
                     offset=OFFSET)
    busy = [port for ports in fed.ports().values() for port in ports if port_holders(port)]
    assert not busy, f"ports of the test federation are taken: {busy}"
    with pytest.MonkeyPatch.context() as patch:  # also for services this process restarts
        for name, value in HEARD.items():
            patch.setenv(name, value)
        env = {**os.environ, "BANGKOM_RUN_DIR": str(root), "BANGKOM_PORT_OFFSET": str(OFFSET)}
        try:
            done = run_bangkom(env, "up", "--no-demo", timeout=600)  # the cities load it, cut off
            assert done.returncode == 0, done.stderr[-4000:]
            yield fed, env
        finally:
            run_bangkom(env, "down", timeout=300)


def _unhealthy(fed: Federation) -> dict[str, str]:
    return {row["name"]: row["health"] for row in fed.status() if row["health"] != "up"}


def _unknown_processes(fed: Federation) -> list[str]:
    """Processes of the checkout's run directory that no recorded component claims."""
    known = {pid for name in fed.state.components() for pid in fed.state.processes(name)}
    from deploy.local.process import command_line

    return [f"{pid}: {command_line(pid)[:120]}" for pid in fed.state.own_processes()
            if pid not in known]


async def _recomputed(fed: Federation, topic_records) -> dict:
    """The national figures from the cities' own brokers: what the link must carry whole."""
    scratch = Figures()
    for city in CITIES:
        for stream in CITY_STREAMS:
            for record in await topic_records(fed.kafka_admin(city), topic(city, stream)):
                scratch.apply(*decode(record.value))
    return q.national(scratch)["cities"]


async def _served(url: str, part: str = "cities") -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.get("/figures")
    response.raise_for_status()
    return response.json()[part]


async def _figures_match(fed: Federation, topic_records, timeout: float = 90,
                         loaded=CITIES) -> None:
    """The national figures of every city equal the recomputation (absent where it is)."""
    expected = await _recomputed(fed, topic_records)
    assert set(expected) == set(loaded), f"the cities' own topics hold {sorted(expected)}"
    national = next(s.url for s in fed.services if s.service == "evaluation")
    deadline = time.monotonic() + timeout
    served: dict = {}
    while time.monotonic() < deadline:
        try:
            served = await _served(national)
        except httpx.HTTPError:
            served = {}
        if all(served.get(city) == expected.get(city) for city in CITIES):
            return
        await asyncio.sleep(1)
    differ = {city: (served.get(city), expected.get(city)) for city in CITIES
              if served.get(city) != expected.get(city)}
    raise AssertionError(f"national figures differ from the recomputation: {differ}")




def test_every_node_has_its_own_broker_and_the_links_run(federation):
    fed, _ = federation
    assert fed.topology == "federated" and _unhealthy(fed) == {}
    components = fed.state.components()
    bootstraps = {}
    for spec in fed.services:
        given = environment(components[spec.name]["pid"])["BANGKOM_KAFKA_BOOTSTRAP"]
        assert given == fed.bootstrap(spec.node), spec.name
        bootstraps[spec.node] = given
        assert port_holders(int(given.rsplit(":", 1)[1])) == [
            components[fed.broker_name(spec.node)]["pid"]], f"{spec.name}: not its node's broker"
    assert len(set(bootstraps.values())) == len(CITIES) + 1  # five brokers, none shared
    assert "mirrormaker" in components


def test_by_default_every_service_and_link_is_itself_on_secured_brokers(federation):
    """`./dev up` with no option: SASL_SSL/SCRAM on every broker, a plaintext client refused,
    each service its own principal, each city's link `<city>-link` on both of its sides and
    allowed its own city's topics only."""
    fed, _ = federation
    assert fed.secure
    components = fed.state.components()
    for spec in fed.services:
        given = environment(components[spec.name]["pid"])
        assert given["BANGKOM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", spec.name
        assert given["BANGKOM_KAFKA_SASL_USERNAME"] == f"{spec.node}-{spec.service}", spec.name
    for node in fed.brokers():
        with pytest.raises(Exception):  # noqa: B017 - any failure to talk: no TLS, no SASL
            run_coroutine(lambda n=node: list_topics(fed.bootstrap(n)), timeout=30)
    links = fed.state.root / "mirrormaker" / "mm2.properties"
    assert stat.S_IMODE(links.stat().st_mode) == 0o600, "it holds the links' passwords"
    jaas = {line.split(".sasl.jaas.config", 1)[0]: line for line in links.read_text().splitlines()
            if ".sasl.jaas.config" in line}
    assert set(jaas) == {a for c in CITIES for a in (c, f"{NATIONAL}-{c}")}
    for alias, line in jaas.items():
        assert f'username="{link_principal(alias.removeprefix(NATIONAL + "-"))}"' in line, alias
    outcome = run_coroutine(lambda: _write_as_link(fed, "palu", topic("salatiga", "enrollment")),
                            timeout=60)
    assert outcome == "TopicAuthorizationFailedError", outcome


async def _write_as_link(fed: Federation, city: str, name: str) -> str:
    link = Settings(**fed.security.settings(link_principal(city), fed.kafka_bootstrap))
    producer = AIOKafkaProducer(**client_kwargs(link), request_timeout_ms=10_000,
                                enable_idempotence=False)
    try:
        await producer.start()
        await producer.send_and_wait(name, b"{}", key=b"probe")
        return "allowed"
    except KafkaError as error:
        return type(error).__name__
    finally:
        await producer.stop()


CUT_OFF_SECONDS = 120


def _training_year(fed: Federation, cities: list[str]) -> dict:
    """A whole training year in `cities`, through their APIs; any failed request raises."""
    urls = {f"{s.node}/{s.service}": s.url for s in fed.services if s.node in cities}
    summary = demo.load(urls, {c: fed.tokens()[c] for c in cities}, progress=False, strict=True)
    assert all(summary["cities"][c]["sessions_completed"] > 0 for c in cities), summary
    return summary


def _client(kafka: Settings | str) -> dict:
    return client_kwargs(kafka) if isinstance(kafka, Settings) else {"bootstrap_servers": kafka}


async def _count(topic_records, bootstrap: Settings | str, name: str) -> int:
    return len(await topic_records(bootstrap, name))


async def _served_cities(fed: Federation, part: str = "cities") -> dict:
    national = next(s.url for s in fed.services if s.service == "evaluation")
    return await _served(national, part)


async def _stop_component(fed: Federation, name: str) -> None:
    entry = fed.state.components()[name]
    os.kill(entry["pid"], signal.SIGTERM)  # stopped, as an operator or an outage would
    deadline = time.monotonic() + 60
    while is_alive(entry["pid"], entry["started"]):
        assert time.monotonic() < deadline, f"{name} did not stop"
        await asyncio.sleep(0.2)


async def _cut_off(fed, env, topic_records, *, stop: str, cities: list[str], loaded: list[str],
                   meanwhile=None):
    """Stop `stop`, run a training year in `cities`, keep the link down CUT_OFF_SECONDS, bring
    it back with `bangkom up`; the figures then converge."""
    await _stop_component(fed, stop)
    began = time.monotonic()
    try:
        await asyncio.to_thread(_training_year, fed, cities)
        served = await _served_cities(fed)  # the nation serves what it had, without them
        assert not any(served.get(city) for city in cities), "counted through a link that is down"
        if meanwhile is not None:
            await meanwhile()
        await asyncio.sleep(max(0.0, CUT_OFF_SECONDS - (time.monotonic() - began)))
    finally:  # brought back even when a check failed, so the module's later tests find it up
        done = await asyncio.to_thread(run_bangkom, env, "up", "--no-demo", timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    await _figures_match(fed, topic_records, timeout=180, loaded=loaded)


async def test_cities_cut_off_by_a_stopped_national_broker_work_and_converge(
        federation, topic_records):
    fed, env = federation
    await _cut_off(fed, env, topic_records, stop="kafka-national",
                   cities=["palu", "pematangsiantar"], loaded=["palu", "pematangsiantar"])
    served = await _served_cities(fed)
    assert served["palu"]["enrollment"]["enrollments"] > 0


async def test_insights_made_while_mirrormaker_is_stopped_reach_the_city_afterwards(
        federation, topic_records):
    fed, env = federation
    insights = topic("palu", "insights")

    async def meanwhile() -> None:
        # Counted once MirrorMaker is gone: until then it may still be copying insights the
        # first cut-off's nation made.
        before = await _count(topic_records, fed.kafka_admin("palu"), insights)
        # A restarted nation says every city's findings again: these wait at the nation.
        national = await _count(topic_records, fed.kafka_admin(NATIONAL), insights)
        await asyncio.to_thread(fed.restart_service, "national-evaluation")
        deadline = time.monotonic() + 90
        while (made := await _count(topic_records, fed.kafka_admin(NATIONAL), insights)) <= national:
            assert time.monotonic() < deadline, "the nation made no insight while cut off"
            await asyncio.sleep(1)
        assert await _count(topic_records, fed.kafka_admin("palu"), insights) == before
        meanwhile.made = made

    await _cut_off(fed, env, topic_records, stop="mirrormaker",
                   cities=["salatiga", "sawahlunto"], loaded=CITIES, meanwhile=meanwhile)
    deadline = time.monotonic() + 90
    while await _count(topic_records, fed.kafka_admin("palu"), insights) < meanwhile.made:
        assert time.monotonic() < deadline, "the insights made while cut off did not arrive"
        await asyncio.sleep(1)


async def test_the_cities_training_year_reaches_the_nation_and_insights_come_back(
        federation, topic_records):
    fed, _ = federation
    await _figures_match(fed, topic_records)
    for city in CITIES:  # published at the nation, mirrored down to the city's own broker
        deadline = time.monotonic() + 90
        while not (insights := await topic_records(fed.kafka_admin(city), topic(city, "insights"))):
            assert time.monotonic() < deadline, f"no insight reached {city}"
            await asyncio.sleep(2)
        assert all(decode(record.value)[0].type.startswith("bangkom.insight") for record in insights)
    reporting = await _served_cities(fed, "reporting")
    assert {city: row["behind"] for city, row in reporting.items()} == dict.fromkeys(CITIES, False)
    links = await asyncio.to_thread(fed.link_rows)
    assert len(links) == 2 * len(CITIES)
    assert {row["health"] for row in links} == {"up"}, "\n".join(
        f"{row['name']}: {row['health']}" for row in links)
    up = [row for row in links if row["name"].endswith("→national")]
    assert all(row["detail"].startswith("lag 0 records") for row in up), up  # all copied


async def test_a_city_whose_broker_is_down_is_shown_behind_and_the_nation_serves_every_figure(
        federation):
    fed, env = federation
    before = await _served_cities(fed)
    await _stop_component(fed, "kafka-palu")
    try:
        deadline = time.monotonic() + BEHIND_SECONDS + 60
        while not (reporting := await _served_cities(fed, "reporting"))["palu"]["behind"]:
            assert time.monotonic() < deadline, f"palu is not shown behind: {reporting['palu']}"
            await asyncio.sleep(1)
        assert await _served_cities(fed) == before, "a figure changed or went missing"
        assert time.time() - reporting["palu"]["last_heard"] > BEHIND_SECONDS
        assert reporting["palu"]["last_event_time"] is not None
        assert [c for c, row in reporting.items() if row["behind"]] == ["palu"]
    finally:
        done = await asyncio.to_thread(run_bangkom, env, "up", "--no-demo", timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    deadline = time.monotonic() + 60
    while (await _served_cities(fed, "reporting"))["palu"]["behind"]:
        assert time.monotonic() < deadline, "palu is still shown behind after its broker is back"
        await asyncio.sleep(1)


def _staff_csv(batch: int, rows: int) -> bytes:
    """`rows` new staff no other test registers (born in 196x; the demo's are born from 1967)."""
    lines = ["nip;nama;unit_kerja;jenis_jabatan;golongan;nip_atasan"]
    for n in range(rows):
        born = dt.date(1960 + batch, 1, 1) + dt.timedelta(days=n % 365)
        nip = f"{born:%Y%m%d}199003{1 + n % 2}{1 + n // 365:03d}"
        lines.append(f"{nip};Pegawai Uji {batch}-{n};Sekretariat Daerah;pelaksana;III/a;")
    return ("\n".join(lines) + "\n").encode()


async def test_the_link_killed_five_times_while_a_city_writes_loses_and_doubles_nothing(
        federation, topic_records):
    """Through the national figures, not only the raw records: MirrorMaker SIGKILLed five times
    while a city imports staff, at least once with records on their way over the link."""
    fed, env = federation
    city = "sawahlunto"
    flows = [topic(city, s) for s in CITY_STREAMS]
    spec = next(s for s in fed.services if (s.node, s.service) == (city, "enrollment"))
    token = fed.tokens()[city]["operator"]
    mid_stream = 0
    async with httpx.AsyncClient(base_url=spec.url, timeout=120,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        for batch in range(KILLS_OF_THE_LINK):
            imported = asyncio.create_task(http.post(
                "/staff/import", content=_staff_csv(batch, 1500),
                headers={"Content-Type": "text/csv"}))
            await asyncio.sleep(2)  # the import's events are on their way up
            lag = await link_lag(fed.kafka_admin(city), fed.kafka_admin(NATIONAL), city, flows)
            mid_stream += lag.records > 0
            entry = fed.state.components()["mirrormaker"]
            os.kill(entry["pid"], signal.SIGKILL)  # no flush, an open transaction left behind
            job = (await imported).json()
            while job.get("finished_at") is None:  # 202: going on as a job
                assert "job_id" in job, job
                await asyncio.sleep(1)
                job = (await http.get(f"/staff/imports/{job['job_id']}")).json()
            assert job["created"] == 1500, job
            done = await asyncio.to_thread(run_bangkom, env, "up", "--no-demo", timeout=300)
            assert done.returncode == 0, done.stderr[-4000:]
    assert mid_stream >= 1, "no kill landed while records were on their way over the link"
    await _figures_match(fed, topic_records, timeout=180)
    await _records_gauge_says_nothing_waits(fed, topic_records, city)


async def _records_gauge_says_nothing_waits(fed: Federation, topic_records, city: str) -> None:
    """Once the link has caught up, the city's beats (copied over it) say where its streams
    end on its own broker, and the nation's bangkom_link_lag_records, those ends less what
    MirrorMaker recorded as copied, is 0 for every city, as `status` measures it."""
    national = next(s.url for s in fed.services if s.service == "evaluation")
    ends: dict[str, list[int]] = {}
    consumer = AIOKafkaConsumer(**_client(fed.kafka_admin(city)))
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # no subscription: no topic known yet
        for name in (topic(city, s) for s in CITY_STREAMS):
            tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name))]
            found = await consumer.end_offsets(tps)
            ends[name] = [found[tp] for tp in tps]
    finally:
        await consumer.stop()
    deadline, said, gauges = time.monotonic() + 60, {}, {}
    while time.monotonic() < deadline:
        beats = await topic_records(fed.kafka_admin(NATIONAL), topic(city, "heartbeat"))
        said = {}
        for record in beats:  # in order: the newest beat per service last
            said.update(decode(record.value)[1].log_end)
        async with httpx.AsyncClient(base_url=national, timeout=10) as http:
            text = (await http.get("/metrics")).text
        gauges = {c: re.search(rf'^bangkom_link_lag_records{{source="{c}",target="national"}} '
                               rf'(\S+)$', text, re.M) for c in CITIES}
        gauges = {c: float(m.group(1)) if m else None for c, m in gauges.items()}
        if said == ends and gauges == dict.fromkeys(CITIES, 0.0):
            break
        await asyncio.sleep(1)
    assert said == ends, "the newest beats do not say where the city's streams end"
    assert gauges == dict.fromkeys(CITIES, 0.0), gauges
    lag = await link_lag(fed.kafka_admin(city), fed.kafka_admin(NATIONAL), city,
                         [topic(city, s) for s in CITY_STREAMS])
    assert lag.records == 0, lag


async def test_every_component_killed_hard_is_brought_back_by_up(federation, topic_records):
    fed, env = federation
    assert _unhealthy(fed) == {}
    await _figures_match(fed, topic_records)
    timings = {}
    for name in KILLED:
        entry = fed.state.components()[name]
        # No wrapper: the recorded pid is the server itself, the process holding its port.
        assert entry["pid"] in port_holders(fed.ports()[name][0]), name
        os.kill(entry["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while is_alive(entry["pid"], entry["started"]):
            assert time.monotonic() < deadline, f"{name} survived SIGKILL"
            await asyncio.sleep(0.05)

        if name == "mirrormaker":  # status says so, link by link
            links = await asyncio.to_thread(fed.link_rows)
            assert all(row["health"].startswith("down: mirrormaker") for row in links), links

        began = time.monotonic()
        done = await asyncio.to_thread(run_bangkom, env, "up", "--no-demo", timeout=HEAL_SECONDS + 60)
        assert done.returncode == 0, f"{name}: {done.stderr[-4000:]}"
        while (unhealthy := await asyncio.to_thread(_unhealthy, fed)):
            assert time.monotonic() - began < HEAL_SECONDS, f"after killing {name}: {unhealthy}"
            await asyncio.sleep(1)
        timings[name] = round(time.monotonic() - began, 1)
        assert fed.state.components()[name]["pid"] != entry["pid"], f"{name} was not restarted"
        assert _unknown_processes(fed) == [], f"after killing {name}"
        await _figures_match(fed, topic_records)
    print(f"healthy again after SIGKILL, seconds: {timings}")


NEW_CITY = "batu"


async def test_a_fifth_city_joins_the_running_federation_with_one_command(
        federation, topic_records):
    """`bangkom city add`: refused for bad input (nothing changed), then a new city joins the
    running federation; its training year reaches the nation, which is not restarted, and
    the nation's insight comes back to the city's own broker."""
    fed, env = federation
    evaluation = fed.state.components()["national-evaluation"]["pid"]
    cities_file = fed.state.root / "cities.json"
    for slug, reason in (("national", "national node"), ("palu", "already in"),
                         ("Kota Batu", "not a valid name")):
        refused = await asyncio.to_thread(run_bangkom, env, "city", "add", slug)
        assert refused.returncode == 2 and reason in refused.stderr, refused.stderr[-2000:]
        assert not cities_file.exists(), "a refused city changed the configuration"
    began = time.monotonic()
    done = await asyncio.to_thread(run_bangkom, env, "city", "add", NEW_CITY, "--name",
                                   "Kota Batu", timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    print(f"city add took {time.monotonic() - began:.0f} s")
    grown = Federation(console=Console(file=open(os.devnull, "w")), state=fed.state, offset=OFFSET)
    assert grown.cities == (*CITIES, NEW_CITY)
    listed = await asyncio.to_thread(run_bangkom, env, "city", "list")
    assert listed.returncode == 0 and "Kota Batu" in listed.stdout, listed.stdout + listed.stderr
    urls = {f"{s.node}/{s.service}": s.url for s in grown.services if s.node == NEW_CITY}
    summary = await asyncio.to_thread(  # Sawahlunto's demo programme, run in the new city
        demo.load, urls, {NEW_CITY: grown.tokens()[NEW_CITY]}, progress=False, strict=True,
        programmes={NEW_CITY: "sawahlunto"})
    completed = summary["cities"][NEW_CITY]["sessions_completed"]
    deadline = time.monotonic() + 120
    while (served := (await _served_cities(grown)).get(NEW_CITY, {})).get(
            "sessions", {}).get("completed") != completed:
        assert time.monotonic() < deadline, f"the nation shows {served.get('sessions')}"
        await asyncio.sleep(1)
    assert fed.state.components()["national-evaluation"]["pid"] == evaluation, "restarted"
    national = next(s.url for s in grown.services if s.service == "evaluation")
    async with httpx.AsyncClient(timeout=10) as http:  # the new city's own token is admitted
        own = await http.get(f"{national}/cities/{NEW_CITY}/below-target", headers={
            "Authorization": f"Bearer {grown.tokens()[NEW_CITY]['viewer']}"})
    assert own.status_code == 200 and own.json()["city"] == NEW_CITY, own.text
    deadline = time.monotonic() + 90
    while not await topic_records(grown.kafka_admin(NEW_CITY), topic(NEW_CITY, "insights")):
        assert time.monotonic() < deadline, f"no insight reached {NEW_CITY}"
        await asyncio.sleep(2)
    assert _unhealthy(grown) == {}


def test_down_leaves_no_process_of_the_checkout(federation):
    fed, env = federation
    done = run_bangkom(env, "down")
    assert done.returncode == 0, done.stderr
    assert fed.state.own_processes() == []
