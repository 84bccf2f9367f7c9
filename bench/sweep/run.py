"""``bench sweep``: every variant gets the same hyperparameter-search compute (Lucic et al. 2018).

    start_sweep(config, protocol, ...)   check it, create the sweep folder (a run folder plus
                                         sweep.json and optuna.db) -> Sweep; the protocol
                                         (K, S, sampler...) is ``bench.sweep.protocol``'s
    open_sweep(directory)                an existing sweep, for ``--resume`` (``bench.sweep.resume``)
    run_sweep(sweep)                     the search phase, then the final phase

Search: K settings per variant from its declared space (``bench.space``), each trained
once (the run's first seed) under the run's budget and evaluated. Final: each variant's best
setting by FID retrained with S fresh seeds. Every variant thus gets K + S trials of one budget.
All variants' search trials form one pool for the executor, so a Ray cluster stays busy; a
slot is written to ``sweep.json`` before it trains and never changes, and the executors skip
finished trials and resume unfinished ones from their checkpoints, so ``--resume`` after a
kill finishes the sweep without retraining or redrawing anything.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from bench.config import RunConfig, RunError
from bench.executors import make_executor
from bench.plugins import Plugins
from bench.run import now, prepare_run, start_run
from bench.space import apply_overrides, parse_distribution, space_of
from bench.store import read_manifest, read_status, update_manifest
from bench.store.rows import read_rows, trial_rows
from bench.store.status import COMPLETED
from bench.store.sweep import FINAL, SAMPLERS, SEARCH, slots, write_sweep
from bench.sweep.protocol import SweepProtocol
from bench.sweep.study import ask_settings, tell
from bench.trial import RunContext, TrialSpec, trial_spec

METRIC = "fid"  # the default --objective (lower is better): picks each variant's best setting


@dataclasses.dataclass
class Sweep:
    ctx: RunContext
    state: dict  # sweep.json

    @property
    def directory(self) -> Path:
        return self.ctx.directory

    @property
    def trackers(self):
        return self.ctx.trackers

    @property
    def protocol(self) -> dict:
        return self.state["protocol"]

    def save(self) -> None:
        write_sweep(self.directory, self.state)


def search_spaces(plugins: Plugins, models: list[str], overrides: dict) -> dict[str, dict]:
    """Each model's search space, its declared one narrowed by ``--space-override``."""
    unknown = sorted(set(overrides) - set(models))
    if unknown:
        raise RunError(f"--space-override names {', '.join(unknown)}, which this sweep does not train "
                       f"(its models: {', '.join(models)})")
    spaces = {}
    for model in models:
        cls = plugins.models.get(model).obj
        declared = space_of(cls)
        try:
            space = apply_overrides(declared, overrides.get(model, {}), cls)
        except ValueError as exc:
            raise RunError(f"search space of {model}: {exc}") from None
        _refuse_default_of_unsearched(model, declared, overrides.get(model, {}))
        if not space:
            raise RunError(f"model {model!r} declares no search space (a search_space class attribute), so "
                           f"its search would train its defaults K times; give it one with --space-override "
                           f"{model}.FIELD=DISTRIBUTION, or leave it out of --models")
        spaces[model] = space
    return spaces


def _refuse_default_of_unsearched(model: str, declared: dict, overrides: dict) -> None:
    """``MODEL.FIELD=default`` takes a searched field out; on a field not searched it would do
    nothing, which is a typo or a misunderstanding rather than a request."""
    for field, text in overrides.items():
        if text.strip().lower() == "default" and field not in declared:
            searched = ", ".join(sorted(declared)) or "nothing"
            raise RunError(f"--space-override {model}.{field}=default: {model} does not search {field} "
                           f"(it searches {searched}), so it already stays at its default; leave the "
                           "override out")


def check_protocol(config: RunConfig, protocol: SweepProtocol) -> None:
    if protocol.samples < 1 or protocol.final_seeds < 1:
        raise RunError("--samples and --final-seeds must each be at least 1")
    if protocol.sampler not in SAMPLERS:
        raise RunError(f"--sampler {protocol.sampler}: use one of {', '.join(SAMPLERS)}")
    if config.eval_samples == 0:
        raise RunError("a sweep picks each variant's best setting by FID: give --eval-samples N (N >= 2), "
                       "not 0")


def start_sweep(config: RunConfig, protocol: SweepProtocol, results_root: Path, command_line: str,
                progress: bool = True, announce=None) -> Sweep:
    """Check everything (before anything is written), then create the sweep folder."""
    check_protocol(config, protocol)
    prepared = prepare_run(config)
    better = objective_direction(prepared.plugins, config, protocol.objective)
    spaces = search_spaces(prepared.plugins, config.models, protocol.overrides)
    ctx = start_run(config, results_root, command_line, progress, prepared, announce,
                    trials_per_model=protocol.samples + protocol.final_seeds,
                    description=f"sweep-{prepared.dataset.name}-{config.budget}")
    state = {
        "protocol": {
            "samples": protocol.samples, "final_seeds": protocol.final_seeds, "seed": protocol.seed,
            "sampler": protocol.sampler, "metric": protocol.objective, "better": better,
            "trial_seed": config.seeds[0],
            "spaces": {m: {f: d.text() for f, d in sorted(s.items())} for m, s in spaces.items()},
        },
        "slots": [],
        "chosen": {},
    }
    sweep = Sweep(ctx, state)
    sweep.save()
    return sweep


def spaces_of(sweep: Sweep) -> dict[str, dict]:
    return {m: {f: parse_distribution(t) for f, t in s.items()} for m, s in sweep.protocol["spaces"].items()}


def spec_of(slot: dict) -> TrialSpec:
    return TrialSpec(slot["model"], slot["seed"], slot["options"], slot.get("backbone"),
                     sweep={"phase": slot["phase"], "slot": slot["index"]})


def add_search_slots(sweep: Sweep, spaces: dict[str, dict] | None = None) -> bool:
    """Draw the search slots still missing (random: all K at once; TPE: one per variant per round,
    after the earlier ones are told). ``spaces``: ``spaces_of(sweep)``, parsed once by the caller
    that draws round after round. Returns whether any were added."""
    p, added = sweep.protocol, False
    for model, space in (spaces if spaces is not None else spaces_of(sweep)).items():
        have = slots(sweep.state, model, SEARCH)
        missing = p["samples"] - len(have)
        if missing <= 0:
            continue
        if p["sampler"] == "tpe":
            if any(s.get("told") is None for s in have):
                continue  # TPE asks after the results so far are in
            missing = 1
        for options, number in ask_settings(sweep.directory, model, space, p["sampler"], p["seed"], missing,
                                            len(have)):
            spec = trial_spec(sweep.ctx.config, model, p["trial_seed"], options)
            sweep.state["slots"].append({
                "model": model, "phase": SEARCH, "index": len(have), "options": options,
                "backbone": spec.backbone, "seed": p["trial_seed"], "trial": spec.name,
                "optuna_number": number, "told": None,
            })
            have = slots(sweep.state, model, SEARCH)
            added = True
    if added:
        sweep.save()
    return added


def objective_direction(plugins, config: RunConfig, objective: str) -> str:
    """"lower" or "higher": how ``--objective``'s column declares its better direction, or a RunError
    (one line, before anything is written) for a column no selected metric produces."""
    from bench.evaluation import metric_columns, select_extractors, select_metrics

    settings = config.eval_settings()
    columns = {c.key: c for _, _, cs in metric_columns(select_metrics(plugins.metric_objects(), settings),
                                                       select_extractors(plugins.extractors, settings,
                                                                         check_weights=False)) for c in cs}
    column = columns.get(objective)
    if column is None or column.better not in ("lower", "higher"):
        ranked = ", ".join(k for k, c in columns.items() if c.better in ("lower", "higher"))
        raise RunError(f"--objective {objective}: no selected metric writes such a column with a better "
                       f"direction; choose one of {ranked}")
    return column.better


def _objective(protocol: dict) -> tuple[str, float]:
    """The sweep's objective column and the sign that makes lower better (sweeps before --objective:
    FID, lower)."""
    return protocol.get("metric", METRIC), (-1.0 if protocol.get("better") == "higher" else 1.0)


def final_value(rows: list[dict], trial: str, metric: str = METRIC) -> float | None:
    """The trial's final value of ``metric`` (the objective), None if it has none (failed, diverged,
    not evaluated)."""
    finals = [r for r in trial_rows(rows, trial) if r.get("eval_point") == "final"]
    if not finals or finals[-1].get("status") != COMPLETED:
        return None
    value = finals[-1].get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _tell_finished(sweep: Sweep, statuses: dict[str, str]) -> None:
    rows = read_rows(sweep.directory)
    p = sweep.protocol
    metric, sign = _objective(p)
    for model in p["spaces"]:  # each study opened once per round
        told = [(slot, final_value(rows, slot["trial"], metric)) for slot in slots(sweep.state, model, SEARCH)
                if slot.get("told") is None and slot["trial"] in statuses]
        tell(sweep.directory, model, p["sampler"], p["seed"],  # Optuna minimises: higher-is-better negated
             [(s["optuna_number"], None if v is None else sign * v) for s, v in told])
        for slot, value in told:
            slot["told"] = value if value is not None else statuses[slot["trial"]]
    sweep.save()


def _choose(sweep: Sweep) -> None:
    """Each variant's best search setting by FID, and its S final slots. Chosen again after
    ``--add-samples``: where the best changed, the old final slots are marked superseded (kept,
    with their rows) and the new best gets S final slots of its own."""
    rows = read_rows(sweep.directory)
    p = sweep.protocol
    metric, sign = _objective(p)
    for model in p["spaces"]:
        scored = [(final_value(rows, s["trial"], metric), s) for s in slots(sweep.state, model, SEARCH)]
        scored = [(v, s) for v, s in scored if v is not None]
        before = sweep.state["chosen"].get(model)
        if not scored:
            sweep.state["chosen"][model] = {"trial": None,
                                            "reason": f"no search trial finished with {metric}"}
            continue
        value, best = min(scored, key=lambda vs: (sign * vs[0], vs[1]["index"]))
        if before is not None and before.get("trial") == best["trial"]:
            continue  # the same best: its final slots stand
        sweep.state["chosen"][model] = {"trial": best["trial"], "options": best["options"], "value": value}
        finals = slots(sweep.state, model, FINAL)
        for slot in finals:  # a best chosen before (A, then B, then A again) gets its own finals back
            slot["superseded"] = slot["options"] != best["options"]
            if not slot["superseded"]:
                del slot["superseded"]
        if any(slot["options"] == best["options"] for slot in finals):
            continue
        for j in range(p["final_seeds"]):
            seed = p["trial_seed"] + 1 + j  # fresh seeds: none of them trained in the search
            spec = trial_spec(sweep.ctx.config, model, seed, best["options"])
            sweep.state["slots"].append({
                "model": model, "phase": FINAL, "index": j, "options": best["options"], "seed": seed,
                "backbone": spec.backbone, "trial": spec.name,
            })
    sweep.save()


def current_finals(state: dict) -> list[dict]:
    """The final slots of each variant's current best (not superseded by ``--add-samples``)."""
    return [s for s in slots(state, phase=FINAL) if not s.get("superseded")]


def compute_per_variant(sweep: Sweep) -> dict[str, dict]:
    """What each variant's trials used (the manifest's trial entries): trials, training seconds,
    images and FLOPs; equal trial counts of one budget are the protocol's equal compute."""
    trials = read_manifest(sweep.directory).get("trials", {})
    out = {}
    for model in sweep.protocol["spaces"]:
        used = [trials.get(s["trial"], {}) for s in slots(sweep.state, model)]
        totals = {key: sum(float(u.get(key) or 0.0) for u in used) for key in ("seconds", "images", "flops")}
        out[model] = {"trials": len(used), **totals}
    return out


def run_sweep(sweep: Sweep) -> dict[str, str]:
    """The search phase to its end, then the final phase; ``{trial: status}`` of every slot."""
    ctx = sweep.ctx
    executor = make_executor(ctx.config.executor, ctx.config.executor_options)
    statuses: dict[str, str] = {}  # of the trials run by this call
    spaces = spaces_of(sweep)
    while True:  # random search: one round; TPE: a round per draw
        add_search_slots(sweep, spaces)
        pending = [spec_of(s) for s in slots(sweep.state, phase=SEARCH) if s.get("told") is None]
        if not pending:
            break
        statuses.update(executor.execute(ctx, pending))
        _tell_finished(sweep, statuses)
    _choose(sweep)
    finals = [spec_of(s) for s in current_finals(sweep.state)]
    statuses.update(executor.execute(ctx, finals))
    sweep.state["compute"] = compute_per_variant(sweep)
    sweep.save()
    update_manifest(ctx.directory, finished=now())
    out = {}
    for slot in sweep.state["slots"]:
        status = read_status(ctx.trial_dir(spec_of(slot)))
        out[slot["trial"]] = status["status"] if status else statuses.get(slot["trial"], "not run")
    return out
