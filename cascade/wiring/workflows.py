"""Builds `[[workflows]]` (and `[[routing.rules]]`, read as workflows) into what the engine
runs a task with: each workflow's gate (its evaluators, options laid over `[gate.options]`), its
ladder (a lane's rungs, each with the workflow's context budget), budget, reproduce stage and
judging. A bad evaluator name or option is a ConfigError naming the workflow and the key."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from cascade.config import BudgetConfig, CascadeConfig, GateConfig, RungConfig
from cascade.core.gate import Gate
from cascade.core.reproduce import ReproduceStage
from cascade.core.routing import Lane
from cascade.core.workflows import Judging, Workflow, default_workflow, joined_gate
from cascade.errors import ConfigError
from cascade.protocols import Model
from cascade.records import Attempt
from cascade.wiring.registry import build_evaluator, build_gate
from cascade.wiring.settings import LoadedConfig
from cascade.workflow_config import DEFAULT_WORKFLOW, WorkflowConfig

FLAG = "--max-cost-usd"
log = logging.getLogger(__name__)


def gate_config(cfg: CascadeConfig, flow: WorkflowConfig) -> GateConfig:
    """The workflow's evaluators (default: `[gate]`'s) with its options over `[gate.options]`,
    key by key for each evaluator."""
    options: dict[str, dict[str, Any]] = {k: dict(v) for k, v in cfg.gate.options.items()}
    for name, own in flow.gate.options.items():
        options[name] = {**options.get(name, {}), **own}
    evaluators = flow.gate.evaluators if flow.gate.evaluators is not None else cfg.gate.evaluators
    return GateConfig(evaluators=evaluators, options=options)


def build_workflow_gate(cfg: CascadeConfig, flow: WorkflowConfig, default: Gate) -> Gate:
    """The workflow's gate; the default gate itself when it is configured the same (so their
    baselines are taken once)."""
    gate = gate_config(cfg, flow)
    if gate == cfg.gate:
        return default
    where = f"workflow {flow.name!r}"
    unused = sorted(set(flow.gate.options) - set(gate.evaluators))
    if unused:
        raise ConfigError(
            f"{where}: gate.options.{unused[0]} is set, but {unused[0]!r} is not among its "
            f"gate.evaluators ({', '.join(gate.evaluators)})"
        )
    evaluators = []
    for name in gate.evaluators:
        try:
            evaluators.append(
                build_evaluator(name, gate, where=f"{where}: gate.options.{name} (with [gate])")
            )
        except ConfigError as exc:
            said = str(exc)
            raise ConfigError(
                said if said.startswith(where) else f"{where}: gate.evaluators: {said}"
            ) from exc
    return Gate(evaluators, shared=default)


def build_workflows(
    loaded: LoadedConfig,
    default_gate: Gate,
    models: Mapping[str, Model],
    reproduction_gate: Gate | None,
) -> tuple[Workflow, ...]:
    """Every configured workflow, built, in matching order. `models`: rung name -> model for
    every rung (empty when nothing will run: `cascade route`); `reproduction_gate`: the reproduce
    stage's judge (None: no workflow can reproduce)."""
    cfg = loaded.config
    flag_cap = cfg.budget.max_cost_usd if loaded.origin("budget.max_cost_usd") == FLAG else None
    built = []
    for flow in cfg.lanes:
        if flow.match.paths and not flow.match.touches and flow.review != "none":
            log.warning(
                "workflow %r matches by `paths` (every path inside): a patch that edits those "
                "paths and others too is not held to it; `touches` holds any patch that edits "
                "them",
                flow.name,
            )
        ladder = _ladder(cfg.ladder, flow)
        when = flow.proof.reproduce or cfg.reproduce.when
        independent = (
            flow.proof.independent
            if flow.proof.independent is not None
            else cfg.reproduce.independent
        )
        stage = None
        if when != "never" and reproduction_gate is not None:
            own = _ladder(cfg.reproduce_ladder, flow) or ladder
            stage = ReproduceStage(own, models, reproduction_gate, when, independent)
        caps = [c for c in (flow.budget.max_cost_usd or cfg.budget.max_cost_usd, flag_cap) if c]
        budget = BudgetConfig(
            max_cost_usd=min(caps) if caps else None,
            batch_max_cost_usd=cfg.budget.batch_max_cost_usd,
        )
        judging = Judging(
            workflow=flow.name, review=flow.review, apply=flow.apply, reviewers=flow.reviewers,
            reproduce=when, independent=independent,
            review_rung=flow.review_rung or ladder[-1].name if flow.review == "model" else "",
        )  # fmt: skip
        lane = Lane(flow.name, flow.ladder.start, flow.ladder.max)
        gate = build_workflow_gate(cfg, flow, default_gate)
        built.append(Workflow(flow.name, gate, ladder, budget, stage, judging, lane, flow))
    return tuple(built)


def _ladder(rungs: tuple[RungConfig, ...], flow: WorkflowConfig) -> tuple[RungConfig, ...]:
    allowed = flow.ladder.rungs
    kept = tuple(r for r in rungs if not allowed or r.name in allowed)
    update: dict[str, object] = {}
    if flow.context_tokens is not None:
        update["context_tokens"] = flow.context_tokens
    if flow.tools is not None:
        update["tools"] = flow.tools
    return tuple(r.model_copy(update=update) for r in kept) if update else kept


def workflows_of(loaded: LoadedConfig) -> tuple[Workflow, ...]:
    """Every workflow, built as a run builds them (a bad evaluator or option is a ConfigError
    naming the workflow), then the default — without a model, a cassette or a sandbox."""
    cfg = loaded.config
    gate = build_gate(cfg.gate)
    flows = build_workflows(loaded, gate, {}, None)
    proof = cfg.reproduce
    default = default_workflow(
        gate, cfg.ladder, cfg.budget, None, reproduce=proof.when, independent=proof.independent
    )
    return (*flows, default)


def policy_gates(flows: tuple[Workflow, ...]) -> Callable[[Attempt], Gate]:
    """The gate the configuration gives a recorded fix attempt: its workflow's, joined with the
    stricter workflows that raised it (`attempt.policy`), as the engine joins them; the default
    gate for a record without a policy or a workflow the configuration no longer has."""
    by = {f.name: f for f in flows}
    default = by[DEFAULT_WORKFLOW].gate
    joined: dict[tuple[str, ...], Gate] = {}

    def gate_for(attempt: Attempt) -> Gate:
        policy = attempt.policy
        own = by.get(policy.workflow) if policy is not None else None
        if policy is None or own is None:
            return default
        stricter = [(n, by[n].gate) for n in policy.raised_by if n in by]
        if not stricter:
            return own.gate
        key = (own.name, *policy.raised_by)
        if key not in joined:
            joined[key] = joined_gate(own.gate, stricter)
        return joined[key]

    return gate_for
