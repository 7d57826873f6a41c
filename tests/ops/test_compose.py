"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

What a `docker compose up` would only reveal late: a service whose module does not exist, a
BANGKOM_* variable that Settings silently ignores, two services on one host port, an unpinned
image, a profile that starts the wrong things.
"""

import ast
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from shared.settings import Settings
from shared.topics import CITIES, NATIONAL

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
NODES = (NATIONAL, *CITIES)
BROKERS = {f"kafka-{node}" for node in NODES}
LINKS = {f"{city}-link" for city in CITIES}
# make the security bundle; provision a broker's users, topics and ACLs; then end
ONE_SHOTS = {"security-setup", *(f"kafka-{node}-provision" for node in NODES)}
INFRASTRUCTURE = {*BROKERS, *LINKS, *ONE_SHOTS, "mongo", "prometheus", "grafana"}
APPS = {name: spec for name, spec in SERVICES.items() if name not in INFRASTRUCTURE}
STATEFUL = {**{b: "/var/lib/kafka/data" for b in BROKERS}, "mongo": "/data/db",
            "prometheus": "/prometheus", "grafana": "/var/lib/grafana"}
_MODULE = re.compile(r"^services\.(\w+)\.app:create_app$")


def command_of(spec: dict) -> list[str]:
    command = spec["command"]
    return command.split() if isinstance(command, str) else command


def app_module(spec: dict) -> tuple[str, str]:
    """(service package, attribute) from `uvicorn --factory services.<svc>.app:create_app ...`."""
    command = command_of(spec)
    assert command[:2] == ["uvicorn", "--factory"], command
    match = _MODULE.match(command[2])
    assert match, f"not services.<svc>.app:create_app: {command[2]}"
    return match.group(1), "create_app"


def environment(spec: dict) -> dict[str, str]:
    env = spec.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: str(v) for k, v in env.items()}


def default_of(value: str) -> str:
    """`${VAR:-default}` -> default; other values unchanged."""
    match = re.fullmatch(r"\$\{\w+:?-([^}]*)\}", value)
    return match.group(1) if match else value


def profile(name: str) -> set[str]:
    return {service for service, spec in SERVICES.items() if name in spec.get("profiles", [])}


def test_every_app_runs_a_services_module_that_exists_with_create_app():
    for name, spec in APPS.items():
        package, attribute = app_module(spec)
        source = ROOT / "services" / package / "app.py"
        assert source.is_file(), f"{name}: {source.relative_to(ROOT)} does not exist"
        tree = ast.parse(source.read_text())
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        assert attribute in functions, f"{name}: no top-level {attribute}() in {source.name}"
        assert command_of(spec)[3:] == ["--host", "0.0.0.0", "--port", "8000"], name


def test_every_city_has_enrollment_and_sessions_and_the_nation_an_evaluation():
    expected = {f"{city}-{svc}" for city in CITIES for svc in ("enrollment", "sessions")}
    assert set(APPS) == expected | {f"{NATIONAL}-evaluation"}


def test_app_names_node_and_service_agree_since_prometheus_derives_labels_from_the_name():
    for name, spec in APPS.items():
        env = environment(spec)
        package, _ = app_module(spec)
        assert name == f"{env['BANGKOM_NODE']}-{env['BANGKOM_SERVICE']}", name
        assert package == env["BANGKOM_SERVICE"], name
        Settings(node=env["BANGKOM_NODE"], service=env["BANGKOM_SERVICE"])  # valid values


def test_every_bangkom_variable_is_a_settings_field():
    fields = {f"BANGKOM_{name.upper()}" for name in Settings.model_fields}
    for name, spec in SERVICES.items():
        unknown = {k for k in environment(spec) if k.startswith("BANGKOM_")} - fields
        assert not unknown, f"{name}: Settings has no field for {sorted(unknown)} (it would be ignored)"


def test_apps_get_broker_database_secret_and_tokens_from_the_environment():
    required = {"BANGKOM_NODE", "BANGKOM_SERVICE", "BANGKOM_KAFKA_BOOTSTRAP", "BANGKOM_MONGO_URL",
                "BANGKOM_TOKEN_HASHES"}
    for name, spec in APPS.items():
        env = environment(spec)
        assert required <= set(env), f"{name} lacks {sorted(required - set(env))}"
        if env["BANGKOM_NODE"] == NATIONAL:
            # the nation never needs to turn an id back into a NIP: it is not given the key
            assert "BANGKOM_PSEUDONYM_SECRET" not in env, name
            assert "BANGKOM_CITY_TOKEN_HASHES" in env, name
        else:
            # The secret has no default in the file: a deployment must choose one.
            assert ":?" in env["BANGKOM_PSEUDONYM_SECRET"], name


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The security bundle as the `security-setup` one-shot writes it with the file's defaults."""
    from deploy.compose_security import write_bundle

    out = tmp_path_factory.mktemp("bundle")
    return out, write_bundle(out)


def properties(path: Path) -> dict[str, str]:
    """`key=value` or `key = value` lines (server.properties, mm2.properties, env files)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def security_mounts(spec: dict) -> list[dict]:
    return [v for v in spec.get("volumes", []) if isinstance(v, dict) and v["source"] == "security"]


def test_every_service_is_given_its_own_nodes_broker_and_no_city_the_nations(bundle):
    _, dirs = bundle
    for name, spec in APPS.items():
        env = environment(spec)
        node, bootstrap = env["BANGKOM_NODE"], env["BANGKOM_KAFKA_BOOTSTRAP"]
        broker = properties(dirs[f"kafka-{node}"] / "server.properties")
        assert f"INTERNAL://{bootstrap}" in broker["advertised.listeners"].split(","), name
        own = properties(dirs[name] / "kafka.env")
        assert own["BANGKOM_KAFKA_BOOTSTRAP"] == bootstrap, name
        if node != NATIONAL:
            assert "national" not in bootstrap, f"{name} would use the national broker"


def test_every_broker_listens_sasl_ssl_only_and_no_secret_is_in_the_file(bundle):
    _, dirs = bundle
    text = (ROOT / "docker-compose.yml").read_text()
    assert "PLAINTEXT" not in text and "SASL_PASSWORD" not in text and "KAFKA_LISTENERS" not in text
    for node in NODES:
        broker = properties(dirs[f"kafka-{node}"] / "server.properties")
        protocols = {entry.split(":")[1] for entry in broker["listener.security.protocol.map"].split(",")}
        assert protocols == {"SSL", "SASL_SSL"}, node
        assert broker["allow.everyone.if.no.acl.found"] == "false", node
        assert SERVICES[f"kafka-{node}"]["entrypoint"] == ["/security/start.sh"]
        assert "--command-config /security/client.properties" in \
            SERVICES[f"kafka-{node}"]["healthcheck"]["test"][1]
    for name in APPS:
        own = properties(dirs[name] / "kafka.env")
        assert own["BANGKOM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert own["BANGKOM_KAFKA_SASL_USERNAME"] == name  # its own principal
        assert environment(SERVICES[name])["BANGKOM_ENV_FILE"] == "/security/kafka.env"
        assert (dirs[name] / "kafka.env").stat().st_mode & 0o077 == 0, name


def test_each_container_mounts_its_own_directory_of_the_bundle_and_only_that(bundle):
    _, dirs = bundle
    own = {**{f"kafka-{n}": f"kafka-{n}" for n in NODES},
           **{f"kafka-{n}-provision": f"operator-{n}" for n in NODES},
           **{name: name for name in (*APPS, *LINKS)}}
    for name, spec in SERVICES.items():
        mounts = security_mounts(spec)
        if name == "security-setup":
            assert spec["volumes"] == ["security:/bundle"]
            continue
        if name not in own:
            assert not mounts, name
            continue
        assert len(mounts) == 1, name
        assert mounts[0]["volume"]["subpath"] == own[name] and mounts[0]["read_only"], name
        assert mounts[0]["target"] == "/security" and own[name] in dirs, name


def test_each_city_links_its_broker_with_the_nation_through_its_own_mirrormaker(bundle):
    _, dirs = bundle
    for city in CITIES:
        link = SERVICES[f"{city}-link"]
        assert link["entrypoint"][-1] == "/security/mm2.properties"
        assert link["depends_on"] == {f"kafka-{city}-provision":
                                      {"condition": "service_completed_successfully"}}
        mm2 = properties(dirs[f"{city}-link"] / "mm2.properties")
        assert mm2["clusters"].split(", ") == [city, f"national-{city}"]
        assert mm2[f"{city}.bootstrap.servers"] == f"kafka-{city}:9092"
        # on one host the national broker's INTERNAL listener; a city host sets its address
        assert mm2[f"national-{city}.bootstrap.servers"] == "kafka-national:9092"
        assert "${BANGKOM_NATIONAL_KAFKA:-kafka-national:9092}" in \
            command_of(SERVICES["security-setup"])
        for alias in (city, f"national-{city}"):
            assert mm2[f"{alias}.security.protocol"] == "SASL_SSL"
            assert f'username="{city}-link"' in mm2[f"{alias}.sasl.jaas.config"]


def test_the_bundle_is_the_local_federations_link_and_bad_input_is_refused(tmp_path):
    from typer.testing import CliRunner

    from deploy.cli import app
    from deploy.local.mirror import LinkSpec, link_properties
    from deploy.local.security import client_settings

    out = tmp_path / "bundle"
    done = CliRunner().invoke(app, ["compose-security", "--out", str(out), "--national-kafka",
                                    "nation.example:9094", "--public-host", "nation.example",
                                    "--new-ca"])
    assert done.exit_code == 0, done.output
    password = __import__("json").loads((out / "ca/credentials.json").read_text())["palu-link"]
    clients = {alias: Settings(**client_settings("palu-link", password, bootstrap,
                                                 Path("/security/ca.pem")))
               for alias, bootstrap in (("palu", "kafka-palu:9092"),
                                        ("national-palu", "nation.example:9094"))}
    assert (out / "palu-link/mm2.properties").read_text() == link_properties(
        LinkSpec({"palu": "kafka-palu:9092"}, "nation.example:9094", clients=clients),
        rest_port=8083)
    national = properties(out / "kafka-national/server.properties")
    assert "EXTERNAL://nation.example:9094" in national["advertised.listeners"]
    again = CliRunner().invoke(app, ["compose-security", "--out", str(out)])
    assert again.exit_code == 0 and (out / "ca/credentials.json").read_text().count(password) == 1
    for args, hint in ((["--national-kafka", "nation"], "--national-kafka"),
                       (["--public-host", "a b"], "--public-host")):
        refused = CliRunner().invoke(app, ["compose-security", "--out", str(tmp_path / "no"), *args])
        assert refused.exit_code != 0 and hint in refused.output, refused.output
        assert not (tmp_path / "no").exists()


def test_a_city_host_keeps_the_nations_copy_and_never_makes_a_ca_of_its_own(tmp_path):
    from typer.testing import CliRunner

    from deploy.cli import app

    city_host = ["--national-kafka", "kafka.bangkom.example:9094"]
    refused = CliRunner().invoke(app, ["compose-security", "--out", str(tmp_path / "b"), *city_host])
    assert refused.exit_code == 2 and "national office" in refused.output, refused.output
    assert not (tmp_path / "b").exists()
    nation = tmp_path / "nation"
    made = CliRunner().invoke(app, ["compose-security", "--out", str(nation), *city_host, "--new-ca"])
    assert made.exit_code == 0, made.output
    copy = tmp_path / "palu-host"  # what the national office hands Palu
    for part in ("kafka-palu", "operator-palu", "palu-enrollment", "palu-sessions", "palu-link"):
        shutil.copytree(nation / part, copy / part)
    (copy / "ca").mkdir()
    shutil.copy(nation / "ca/ca.pem", copy / "ca/ca.pem")
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    kept = CliRunner().invoke(app, ["compose-security", "--out", str(copy), *city_host])
    assert kept.exit_code == 0 and "palu, kept" in kept.output, kept.output
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before
    (copy / "kafka-palu/start.sh").unlink()
    empty = CliRunner().invoke(app, ["compose-security", "--out", str(copy), *city_host])
    assert empty.exit_code == 2 and "no broker directory" in empty.output


def host_ports(spec: dict) -> list[int]:
    ports = []
    for entry in spec.get("ports", []):
        parts = str(entry).split(":")
        assert len(parts) in (2, 3), f"publish with an explicit host port: {entry}"
        ports.append(int(parts[-2]))
    return ports


def test_no_two_services_publish_the_same_host_port():
    seen: dict[int, str] = {}
    for name, spec in SERVICES.items():
        for port in host_ports(spec):
            assert port not in seen, f"{name} and {seen[port]} both publish {port}"
            seen[port] = name


def test_apps_publish_the_ports_of_the_local_federation():
    # Same ports as `bangkom up` (deploy/local/federation.py), so URLs in the docs work for both.
    expected = {"national-evaluation": 8001}
    for i, city in enumerate(CITIES, start=1):
        expected |= {f"{city}-enrollment": 8000 + 10 * i + 1, f"{city}-sessions": 8000 + 10 * i + 2}
    assert {name: host_ports(spec) for name, spec in APPS.items()} == {
        name: [port] for name, port in expected.items()}


def test_images_are_pinned_to_explicit_versions():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, spec in SERVICES.items():
        image = spec["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned"
        if name in APPS:
            assert image == f"bangkom:{version}" and spec["build"] == ".", name


def test_infrastructure_images_are_the_agreed_ones():
    for name in (*BROKERS, *LINKS):
        assert re.fullmatch(r"apache/kafka:4\.1\.\d+", SERVICES[name]["image"]), name
    assert re.fullmatch(r"mongo:[78]\.\d+\.\d+", SERVICES["mongo"]["image"])
    assert SERVICES["prometheus"]["image"].startswith("prom/prometheus:v")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana:")


def test_every_service_has_a_healthcheck():
    for name, spec in SERVICES.items():
        if name in ONE_SHOTS:
            assert spec["restart"] == "no", name
            continue
        check = spec.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    for name, spec in APPS.items():
        assert any("/health" in part for part in spec["healthcheck"]["test"]), name


def test_state_lives_in_named_volumes():
    declared = set(COMPOSE.get("volumes") or {})
    for name, target in STATEFUL.items():
        mounts = [str(v).split(":") for v in SERVICES[name].get("volumes", []) if isinstance(v, str)]
        named = [m for m in mounts if not m[0].startswith((".", "/"))]
        assert any(m[1] == target for m in named), f"{name}: {target} is not a named volume"
        assert {m[0] for m in named} <= declared, f"{name}: volume not declared at the top level"


def test_bind_mounted_files_exist_in_the_repo():
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_apps_wait_for_a_healthy_database_and_their_own_nodes_provisioned_broker():
    for name, spec in APPS.items():
        node = environment(spec)["BANGKOM_NODE"]
        assert spec["depends_on"] == {
            "mongo": {"condition": "service_healthy"},
            f"kafka-{node}-provision": {"condition": "service_completed_successfully"}}, name
        assert SERVICES[f"kafka-{node}-provision"]["depends_on"] == {
            f"kafka-{node}": {"condition": "service_healthy"}}
        assert command_of(SERVICES[f"kafka-{node}-provision"])[-2:] == ["--node", node]
        assert SERVICES[f"kafka-{node}"]["depends_on"] == {
            "security-setup": {"condition": "service_completed_successfully"}}


def test_a_city_profile_runs_that_city_its_broker_its_link_and_its_database_only():
    for city in CITIES:
        assert profile(city) == {f"{city}-enrollment", f"{city}-sessions", "mongo",
                                 f"kafka-{city}", f"kafka-{city}-provision", f"{city}-link",
                                 "security-setup"}, city


def test_the_national_profile_runs_the_broker_the_database_and_the_aggregator_only():
    assert profile("national") == {"kafka-national", "kafka-national-provision", "mongo",
                                   "national-evaluation", "security-setup"}


def test_the_all_profile_runs_everything_and_no_service_starts_without_a_profile():
    assert profile("all") == set(SERVICES)
    assert all(spec.get("profiles") for spec in SERVICES.values())


def test_prometheus_scrapes_exactly_the_compose_apps():
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.compose.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "bangkom")
    targets = {t for s in job["static_configs"] for t in s["targets"]}
    assert targets == {f"{name}:8000" for name in APPS}


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_image_is_python_311_slim_installing_the_lock_then_the_project(dockerfile):
    assert re.fullmatch(r"FROM python:3\.11(\.\d+)?-slim(-\w+)?", dockerfile[0])
    lock = dockerfile.index("RUN pip install --require-hashes -r requirements/runtime.txt")
    project = next(i for i, line in enumerate(dockerfile)
                   if re.match(r"RUN pip install --no-deps \.( |$)", line))
    code = next(i for i, line in enumerate(dockerfile) if line.startswith("COPY shared"))
    # the dependencies' layer comes before any code, so a change of code keeps it
    assert lock < code < project


def test_the_image_runs_as_a_non_root_user(dockerfile):
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_the_image_default_command_is_a_uvicorn_factory(dockerfile):
    cmd = next(line for line in reversed(dockerfile) if line.startswith("CMD "))
    assert '"--factory"' in cmd and "app:create_app" in cmd and '"0.0.0.0"' in cmd


def package_data_files(declared: dict[str, list[str]]) -> set[Path]:
    """The files [tool.setuptools.package-data] adds: globs relative to each package's folder
    (`**` recursive, as setuptools reads them); "*" means every package."""
    files: set[Path] = set()
    for package, patterns in declared.items():
        if package in ("", "*"):
            bases = [d for top in ("shared", "services") for d in [ROOT / top, *(ROOT / top).rglob("*")]
                     if d.is_dir()]
        else:
            bases = [ROOT / package.replace(".", "/")]
        files |= {f for base in bases for pattern in patterns for f in base.glob(pattern) if f.is_file()}
    return files


def test_the_image_gets_every_file_the_services_need():
    """`pip install .` copies Python modules, and other files only when declared as package-data:
    a page or a CSV beside the code would be missing from the image though every local run
    (from the source tree) finds it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = package_data_files(config.get("package-data", {}))
    stray = sorted(
        str(path.relative_to(ROOT))
        for package in ("shared", "services")
        for path in (ROOT / package).rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
        and path not in declared
    )
    assert not stray, f"not installed by `pip install .`; declare them as package-data: {stray}"


def compose_command() -> list[str] | None:
    """Docker Compose v2 (`docker compose` or a standalone `docker-compose`), if installed."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]):
            probe = subprocess.run([*command, "version"], capture_output=True, text=True)
            if probe.returncode == 0 and "version v1." not in probe.stdout:
                return command
    return None


@pytest.mark.parametrize("profiles", [["all"], ["national", "monitoring"], *[[c] for c in CITIES]])
def test_compose_itself_accepts_the_file_for_each_profile(profiles, tmp_path):
    """`docker compose config` validates against the compose spec without an engine. Where
    Compose v2 is not installed (no Docker on CI machines), the same file, interpolated with
    the demo env file and cut to the profiles' services as Compose does, is validated against
    the Compose specification's JSON schema from compose-go (fetched by `bangkom setup`)."""
    command = compose_command()
    wanted = set().union(*(profile(p) for p in profiles))
    if command is None:
        assert set(_validated_against_schema(profiles)["services"]) == wanted
        return
    args = [*command, "--project-directory", str(ROOT), "--env-file", str(ROOT / "deploy/compose/demo.env")]
    for name in profiles:
        args += ["--profile", name]
    result = subprocess.run([*args, "config", "--services"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == wanted


_VARIABLE = re.compile(r"\$(?:\$|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def interpolate(value, env: dict[str, str]):
    """Compose's variable syntax ($$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}) over every string of the file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3)
        found = env.get(name)
        if operator in (":-", ":?") and not found:
            found = None
        if found is None and operator in ("-", ":-"):
            return argument
        if found is None and operator in ("?", ":?"):
            raise AssertionError(f"${{{name}}} is required: {argument}")
        return found or ""

    return _VARIABLE.sub(one, value)


def _validated_against_schema(profiles: list[str]) -> dict:
    import json

    import jsonschema

    from deploy.local.tools import compose_schema

    schema_file = compose_schema()
    assert schema_file.is_file(), f"{schema_file} is missing: run `bangkom setup`"
    env = dict(line.split("=", 1) for line in (ROOT / "deploy/compose/demo.env").read_text().splitlines()
               if "=" in line and not line.lstrip().startswith("#"))
    document = interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()), env)
    document["services"] = {name: spec for name, spec in document["services"].items()
                            if set(spec.get("profiles", [])) & set(profiles) or not spec.get("profiles")}
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert problems == []
    return document


def test_the_schema_check_catches_what_compose_would_refuse():
    """The JSON-schema path is not a rubber stamp: an unknown key and wrong types are refused."""
    import json

    import jsonschema

    from deploy.local.tools import compose_schema

    schema = json.loads(compose_schema().read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    bad = {"services": {"x": {"image": "a:1", "restart_policy": "always"}}}
    assert list(validator.iter_errors(bad))
    bad = {"services": {"x": {"image": ["a:1"], "healthcheck": {"test": 5}}}}
    assert list(validator.iter_errors(bad))
    assert not list(validator.iter_errors({"services": {"x": {"image": "a:1"}}}))
    assert interpolate("${A:-d} ${B} $$C ${E-x}", {"B": "b", "A": ""}) == "d b $C x"
