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
}
# `bangkom bench city` is `bangkom bench-city` (`bench` itself is a plain command).
if sys.argv[1:3] == ["bench", "city"]:
    sys.argv[1:3] = ["bench-city"]


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
def up() -> None:
    """Start Kafka, FerretDB and the nine services (four cities + the nation), load demo data."""
    from deploy.local.federation import Federation
    from deploy.local.infra import SetupError
    from deploy.local.process import StartupError

    setup()
    federation = Federation(console=err)
    try:
        federation.up()
    except (StartupError, SetupError) as error:
        raise _fail(f"{error}\nNothing new is left running; logs: {federation.state.logs}") from None
    except KeyboardInterrupt:
        raise _fail("interrupted; what this command had started was stopped", 130) from None
    try:
        federation.load_demo()
    except Exception as error:  # noqa: BLE001 - the federation itself is up: say so, keep it
        federation.print_summary(console)
        raise _fail(f"the federation is up, but loading the demo data failed: {error!r}") from None
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

    rows = Federation(console=err).status()
    table = Table(title="Bangkom local federation")
    for column in ("component", "address", "pid", "health"):
        table.add_column(column, overflow="fold")
    for row in rows:
        health = row["health"]
        table.add_row(row["name"], row["address"], row["pid"],
                      f"[green]{health}[/]" if health == "up" else f"[red]{health}[/]")
    console.print(table)
    down_count = sum(row["health"] != "up" for row in rows)
    if down_count:
        raise _fail(f"{down_count} of {len(rows)} components are not up")


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
