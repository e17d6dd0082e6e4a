"""What rung zero needs, built from configuration: the fault localisation a run measures
(`[localise]`, evaluators/localisation.py) and the model of a `repair/mutate` rung (`[repair]`)."""

from __future__ import annotations

import functools

from cascade.config import CascadeConfig, RungConfig
from cascade.core import localise as ranking
from cascade.core.baseline_store import code_digest
from cascade.core.localised import Localising
from cascade.protocols import Model
from cascade.repair.search import MutationRepair
from evaluators import localisation


def build_localising(cfg: CascadeConfig) -> Localising | None:
    """The run's localisation, or None when `[localise] enabled = false`. A kept one is found
    again only for the same settings and the same measuring and ranking code."""
    settings = cfg.localise
    if not settings.enabled:
        return None
    measure = functools.partial(
        localisation.localise, timeout=settings.timeout, max_tests=settings.max_tests
    )
    said = settings.model_dump_json(exclude={"show", "enabled"})
    return Localising(measure, said, code_digest(localisation, ranking), show=settings.show)


def build_repair(rung: RungConfig, cfg: CascadeConfig) -> Model:
    """The model of a `repair/*` rung (its search is what a run calls)."""
    return MutationRepair(rung, cfg.repair)
