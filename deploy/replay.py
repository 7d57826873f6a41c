"""`bangkom replay`: the CLI face of services.evaluation.replay (listed in deploy/cli.py)."""

from __future__ import annotations

import asyncio

import typer


def replay() -> None:
    """Rebuild all national figures from the Kafka log (drops and refills the stored deltas).

    Uses the BANGKOM_ settings (Kafka and FerretDB of the local federation by default). A
    running national service pauses meanwhile and loads the result when the rebuild ends.
    """
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    from services.evaluation.replay import rebuild
    from shared.settings import Settings
    from shared.topics import NATIONAL

    settings = Settings(node=NATIONAL, service="evaluation")
    err = Console(stderr=True)
    columns = (TextColumn("[bold]replaying city events"), BarColumn(), MofNCompleteColumn(),
               TextColumn("events"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("replay", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            rebuilt = asyncio.run(rebuild(settings, on_progress))
        except KeyboardInterrupt:
            err.print("[yellow]interrupted:[/] run `bangkom replay` again to finish the rebuild")
            raise typer.Exit(130) from None
    err.print(f"[green]✓[/] national figures rebuilt from {rebuilt.events:,} events "
              f"by {rebuilt.workers} worker process(es)")
