"""`bangkom links-config`: a city's MirrorMaker 2 configuration for docker compose.

The compose file's `<city>-link-config` one-shot writes it into a volume that the city's
MirrorMaker container reads, from the same `link_properties` as the local federation's links,
so the two cannot drift: the national address is the one variable a city host sets.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

LINK_REST_PORT = 8083  # MirrorMaker's internal REST in the container (dedicated mode)


def links_config(
    city: str = typer.Option(..., "--city", help="the city's slug, e.g. palu"),
    city_kafka: str = typer.Option(..., "--city-kafka", help="the city broker, host:port"),
    national_kafka: str = typer.Option(..., "--national-kafka",
                                       help="the national broker as the city host reaches it"),
    out: Path = typer.Option(..., "--out", help="where to write mm2.properties"),
) -> None:
    """Write the MirrorMaker 2 configuration of one city's link with the nation."""
    from deploy.local.mirror import LinkSpec, link_properties

    for name, value in (("--city-kafka", city_kafka), ("--national-kafka", national_kafka)):
        if not re.fullmatch(r"[A-Za-z0-9.-]+:\d{1,5}", value):
            raise typer.BadParameter(f"{value!r} is not host:port", param_hint=name)
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,40}", city) or city == "national":
        raise typer.BadParameter(f"{city!r} is not a city slug", param_hint="--city")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(link_properties(LinkSpec({city: city_kafka}, national_kafka),
                                   rest_port=LINK_REST_PORT))
    typer.echo(f"wrote {out}: {city} ({city_kafka}) <-> national ({national_kafka})")
