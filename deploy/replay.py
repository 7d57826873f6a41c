"""`bangkom replay`: the CLI face of services.evaluation.replay (listed in deploy/cli.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import typer


def replay(
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    workers: int = typer.Option(0, "--workers", min=0,
                                help="worker processes (0: one per core)"),
) -> None:
    """Rebuild all national figures from the Kafka log (built beside the served ones, swapped in).

    First checks, changing nothing, that the log holds every record the figures count (broker
    reachable, every partition present and starting at offset 0), and refuses otherwise. Uses
    the BANGKOM_ settings (Kafka and FerretDB of the local federation by default). A running
    national service keeps serving its figures meanwhile and loads the result at the end.
    """
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    from services.evaluation.replay import ReplayRefused, preflight, rebuild
    from services.evaluation.store import DeltaStore
    from shared.mongo import connect
    from shared.settings import Settings
    from shared.topics import NATIONAL

    settings = Settings(node=NATIONAL, service="evaluation")
    if not any(k.startswith("BANGKOM_KAFKA_") for k in os.environ):
        # nothing configured: the local federation's nation, as the evaluation (its brokers
        # are secured by default, and the evaluation's principal may read every city's events)
        from deploy.local.federation import Federation

        local = Federation(console=Console(stderr=True))
        if local.secure:
            settings = local.tool_settings(NATIONAL, "evaluation")
    err = Console(stderr=True)
    # The client's connection errors would reach Python's last-resort stderr handler; the
    # refusal below says the same in one line.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())

    def refuse(message: str, code: int = 1) -> typer.Exit:
        err.print(Text.assemble(("replay refused: ", "bold red"), message,
                                "\nThe national database was not changed."), soft_wrap=True)
        return typer.Exit(code)

    async def check():
        client = connect(settings)
        try:
            return await preflight(settings, DeltaStore(client[settings.database]))
        finally:
            await client.close()

    try:
        with err.status("checking the log: brokers, topics, first offsets"):
            extent = asyncio.run(check())
    except ReplayRefused as refused:
        raise refuse(str(refused)) from None
    events = sum(end - begin for begin, end in extent.values())
    err.print(f"[green]✓[/] the log holds every record: {events:,} events in "
              f"{len(extent)} partitions, each from offset 0")
    if not yes:
        if not sys.stdin.isatty():
            raise refuse("no terminal to confirm on: run `bangkom replay --yes`", 2)
        if not typer.confirm(f"Drop the national deltas of {settings.database} and rebuild them "
                             f"from these {events:,} events?"):
            raise refuse("not confirmed", 1)

    columns = (TextColumn("[bold]replaying city events"), BarColumn(), MofNCompleteColumn(),
               TextColumn("events"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("replay", total=events)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            rebuilt = asyncio.run(rebuild(settings, on_progress, workers=workers or os.cpu_count(),
                                          extent=extent))
        except KeyboardInterrupt:
            err.print("[yellow]interrupted:[/] run `bangkom replay` again to finish the rebuild")
            raise typer.Exit(130) from None
    err.print(f"[green]✓[/] national figures rebuilt from {rebuilt.events:,} events "
              f"by {rebuilt.workers} worker process(es)")
