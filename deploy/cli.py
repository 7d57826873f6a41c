"""`bangkom`: set up, run, inspect and test the local federation (`./dev <command>`).

Commands import their machinery inside the function body, so `bangkom --help` stays fast and a
broken module only breaks its own command. A command that lives in its own module is added in
`_EXTERNAL_COMMANDS` below: "name": "module:function", where the function is a plain typer
command (annotated parameters). A listed module that does not exist yet is skipped.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer
from rich.console import Console
from rich.text import Text

app = typer.Typer(help=__doc__.splitlines()[0], no_args_is_help=True, add_completion=False)
# Piped output (CI logs) gets room for the tables instead of the 80 columns rich assumes.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

_EXTERNAL_COMMANDS = {
    "replay": "deploy.replay:replay",
    "bench": "deploy.bench:bench",
    "bench-city": "deploy.bench_city:bench_city",
    "bench-federation": "deploy.bench_federation:bench_federation",
    "bench-consumer": "deploy.bench_consumer:bench_consumer",
    "compose-security": "deploy.compose_security:compose_security",
    "compose-provision": "deploy.compose_security:compose_provision",
}
# `bangkom bench city` is `bangkom bench-city` (`bench` itself is a plain command), and so on.
if sys.argv[1:3] in (["bench", "city"], ["bench", "federation"], ["bench", "consumer"]):
    sys.argv[1:3] = [f"bench-{sys.argv[2]}"]


def _fail(message: str, code: int = 1) -> typer.Exit:
    # Plain text: the message quotes logs, whose brackets are not markup.
    err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    return typer.Exit(code)


@app.command()
def setup() -> None:
    """Fetch the Kafka jars and build FerretDB into the cache (once; later runs reuse them)."""
    from deploy.local.infra import SetupError, cache_dir, setup as run_setup
    from deploy.local.tools import check_build_tools, ensure_asyncapi_parser, ensure_compose_schema

    try:
        check_build_tools()
        run_setup(err)
        ensure_compose_schema(err)
        ensure_asyncapi_parser(err)
    except SetupError as error:
        raise _fail(str(error)) from None
    err.print(f"[green]✓[/] cache ready in {cache_dir()}")


@app.command()
def up(single_broker: bool = typer.Option(
        False, "--single-broker",
        help="one Kafka for every node, no MirrorMaker (fast tests; not the federation)"),
       no_demo: bool = typer.Option(False, "--no-demo", help="load no demo data"),
       plaintext: bool = typer.Option(
           False, "--plaintext", help="brokers with no authentication and no ACLs (by default "
           "SASL_SSL/SCRAM and least-privilege ACLs, each service and link its own principal)")
       ) -> None:
    """Start a Kafka broker per city and for the nation with MirrorMaker 2 linking them,
    FerretDB, and the nine services (four cities + the nation); load demo data. After a
    crash, run it again: it starts exactly what is down."""
    from deploy.local.federation import Federation
    from deploy.local.infra import SetupError
    from deploy.local.process import StartupError

    setup()
    try:
        federation = Federation(console=err, single_broker=True if single_broker else None,
                                secure=False if plaintext else None)
    except StartupError as error:
        raise _fail(str(error)) from None
    try:
        federation.up()
    except (StartupError, SetupError) as error:
        raise _fail(f"{error}\nNothing new is left running; logs: {federation.state.logs}") from None
    except KeyboardInterrupt:
        raise _fail("interrupted; what this command had started was stopped", 130) from None
    try:
        if not no_demo:
            federation.load_demo()  # while MirrorMaker starts: the demo data need no link
    except Exception as error:  # noqa: BLE001 - the federation itself is up: say so, keep it
        federation.print_summary(console)
        raise _fail(f"the federation is up, but loading the demo data failed: {error!r}") from None
    try:
        federation.wait_links()
    except StartupError as error:
        raise _fail(f"{error}\nThe nodes run, unlinked; logs: {federation.state.logs}") from None
    federation.print_summary(console)


@app.command()
def down(wipe: bool = typer.Option(False, "--wipe", help="also delete data, logs and tokens")) -> None:
    """Stop everything `up` started (from any shell)."""
    from deploy.local.federation import Federation

    stopped = Federation(console=err).down(wipe=wipe)
    err.print(f"[green]✓[/] stopped {len(stopped)}: {', '.join(stopped) or 'nothing was running'}"
              + (" (data wiped)" if wipe else ""))


@app.command()
def status() -> None:
    """Every component with its address and health; exits 1 when any is not up."""
    from rich.table import Table

    from deploy.local.federation import Federation

    federation = Federation(console=err)
    rows = federation.status()
    table = Table(title=f"Bangkom local federation ({federation.topology})")
    for column in ("component", "address", "pid", "MiB", "health"):
        table.add_column(column, overflow="fold", justify="right" if column == "MiB" else "left")
    for row in rows:
        health = row["health"]
        if health == "up" and row.get("detail"):
            health = f"up, {row['detail']}"
        table.add_row(row["name"], row["address"], row["pid"], row.get("memory_mib", ""),
                      f"[green]{health}[/]" if row["health"] == "up" else f"[red]{health}[/]")
    console.print(table)
    memory = sum(int(row.get("memory_mib") or 0) for row in rows)
    console.print(f"memory of the running components: {memory:,} MiB "
                  "(proportional set size: shared pages split between their processes)")
    down_count = sum(row["health"] != "up" for row in rows)
    if down_count:
        raise _fail(f"{down_count} of {len(rows)} components are not up")


city_app = typer.Typer(help="The federation's cities: add one to the running federation, list them.",
                       no_args_is_help=True)
app.add_typer(city_app, name="city")


@city_app.command("add")
def city_add(slug: str = typer.Argument(..., help="the city's slug, e.g. kota-batu"),
             name: str = typer.Option("", "--name", help='e.g. "Kota Batu"')) -> None:
    """Join a city to the running local federation: its broker, topics, link, credentials,
    ACLs, tokens and two services; the nation picks it up without a restart."""
    from deploy.local.federation import CityError, Federation
    from deploy.local.infra import SetupError
    from deploy.local.process import StartupError

    federation = Federation(console=err)
    try:
        federation.add_city(slug, name)
        federation.wait_links()
    except CityError as error:
        raise _fail(f"{error} (nothing was changed)", 2) from None
    except (StartupError, SetupError) as error:
        raise _fail(f"{error}\nthe city was taken out of the configuration again; logs: "
                    f"{federation.state.logs}") from None
    spec = {s.service: s.url for s in federation.services if s.node == slug}
    tokens = federation.tokens()[slug]
    console.print(f"[green]✓[/] {slug} joined: enrollment {spec['enrollment']}, sessions "
                  f"{spec['sessions']}, broker {federation.bootstrap(slug)}", highlight=False)
    for role, token in tokens.items():
        console.print(f"  {slug:<16} {role:<9} {token}", soft_wrap=True, highlight=False)


@city_app.command("list")
def city_list() -> None:
    """Every city of this run directory with its broker, services and link (exits 1 when any
    of them is not up)."""
    from rich.table import Table

    from deploy.local.federation import Federation

    federation = Federation(console=err)
    rows = {row["name"]: row for row in federation.status()}
    table = Table(title=f"Cities of the local federation ({len(federation.cities)})")
    for column in ("city", "name", "broker", "enrollment", "sessions", "link up", "link down"):
        table.add_column(column, overflow="fold")
    failing = 0
    for entry in federation.state.city_entries():
        city = entry["slug"]
        cells = [rows.get(federation.broker_name(city), {}).get("health", "-"),
                 rows.get(f"{city}-enrollment", {}).get("health", "-"),
                 rows.get(f"{city}-sessions", {}).get("health", "-"),
                 rows.get(f"link {city}→national", {}).get("health", "-"),
                 rows.get(f"link national→{city}", {}).get("health", "-")]
        failing += any(cell not in ("up", "-") and not cell.startswith("up") for cell in cells)
        table.add_row(city, entry["name"],
                      *(f"[green]{c}[/]" if c.startswith("up") else f"[red]{c}[/]" for c in cells))
    console.print(table)
    if failing:
        raise _fail(f"{failing} of {len(federation.cities)} cities have a part that is not up")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Set up, then run pytest with any extra arguments (`bangkom test -k enroll -x`)."""
    from deploy.local.infra import SetupError
    from deploy.local.paths import REPO_ROOT
    from deploy.local.tools import ensure_test_tools

    setup()
    try:
        ensure_test_tools(err)
    except SetupError as error:
        raise _fail(str(error)) from None
    code = subprocess.call([sys.executable, "-m", "pytest", *ctx.args], cwd=REPO_ROOT)
    if code == 5:
        raise _fail("pytest collected no test: that is a failure", 5)
    raise typer.Exit(code)


def _add_external_commands() -> None:
    for name, target in _EXTERNAL_COMMANDS.items():
        module_name, _, function = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue  # not written yet
            raise
        app.command(name)(getattr(module, function))


_add_external_commands()
