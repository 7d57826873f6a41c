"""Contender (d)'s figures: the plain recomputation it is checked against agrees with the
evaluation's own `Figures` on every number both compute."""

import orjson

from deploy.bench_quix import core_figures
from deploy.datagen import generate
from services.evaluation import queries
from services.evaluation.figures import Figures
from shared.events import decode


def test_core_figures_agree_with_the_evaluations_figures():
    records = list(generate(3, seed=4, staff=120))
    core = core_figures(orjson.loads(r.value) for r in records)
    fig = Figures()
    for record in records:
        fig.apply(*decode(record.value))

    assert {c: sum(m.values()) for c, m in core["events"].items()} == dict(fig.events)
    completions = {c: queries.training(queries.session_rows(fig, city=c))["enrollment"]["completions"]
                   for c in fig.cities}
    assert core["completions"] == completions
    for city, years in core["jp"].items():
        for year, cell in years.items():
            ledger = queries.jp_ledger(fig, city, int(year))
            assert cell["at_least_target"] == sum(jp >= 20 for jp in ledger.values()) > 0
            assert cell["jp_total"] == sum(ledger.values())
