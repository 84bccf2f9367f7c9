"""Across sweeps: the same variants swept on different datasets or backbones, side by side.

One table per group of sweeps that may share one (the same variants and the same sweep protocol:
K, S, sampler, metric and budget; the dataset and the backbone may differ, that is the point):
variants by sweep, each cell the final FID of the variant's best setting over its S fresh seeds
with its 95% interval and its rank within the sweep. Whether two sweeps rank the variants alike
is Kendall's tau-b between their columns, with its p-value; with a handful of variants even
identical rankings may not be significant, and the report says so. Sweeps that differ in their
variants or protocol are never mixed into one table: each group gets its own, and one line per
group says what differs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from typing import NamedTuple

import pandas as pd

from bench.backbones.base import DEFAULT_BACKBONE
from bench.report.format import dig, fmt_p
from bench.report.load import RunFolder
from bench.report.render import Bold, Bullets, Heading, Para, Table
from bench.report.stats import fid_interval
from bench.report.sweep import slot_frame
from bench.space import parse_distribution
from bench.store.sweep import FINAL, read_sweep

FIELDS = ["fid_mean", "fid_low", "fid_high", "n", "rank"]  # one cell of the cross table
FRAME_COLUMNS = ["table", "run_id", "dataset", "backbone", "column", "variant", *FIELDS]
SIGNIFICANCE = 0.05
METHOD = (
    "Columns: each sweep's dataset / backbone (and its run id where two sweeps share both). Each "
    "cell: the mean final FID of the variant's best setting over the sweep's S fresh seeds, its 95% "
    "interval (log-normal, so never below zero; n when fewer seeds than S have an FID) and its rank "
    "within the sweep (#1: the lowest mean FID). FIDs of different datasets are on different scales: "
    "compare the ranks across columns, not the values. Two columns agree as far as Kendall's tau-b "
    "between their rankings says (over the variants with an FID in both: 1 the same order, -1 the "
    "reverse); its p-value is two-sided, exact without ties and asymptotic with them (scipy's "
    "kendalltau)."
)


@dataclasses.dataclass
class SweepFacts:
    """What a sweep is, as far as the cross table needs: its variants, its protocol, where it ran."""

    run: RunFolder
    variants: list[str]  # in the order of its search spaces
    protocol: dict[str, str]  # what must agree for two sweeps to share a table (name -> shown value)
    dataset: str
    backbone: str
    finals: pd.DataFrame  # model, fid: the current final slots (not superseded)


class Agreement(NamedTuple):
    """Kendall's tau-b between the rankings of two columns of a cross table."""

    sweep_a: str
    sweep_b: str
    tau: float
    n: int  # variants ranked in both
    p: float  # two-sided


def sweep_facts(run: RunFolder) -> SweepFacts:
    state = read_sweep(run.path, parse_distribution)
    p, m = state["protocol"], run.manifest
    kind, amount = dig(m, "budget", "kind"), dig(m, "budget", "amount")
    budget = f"{float(amount):g} {kind}" if kind is not None and amount is not None \
        else str(dig(m, "config", "budget") or "n/a")
    protocol = {"K": str(p["samples"]), "S": str(p["final_seeds"]), "sampler": str(p["sampler"]),
                "metric": str(p["metric"]), "budget": budget}
    if kind == "seconds":  # a wall-clock budget buys what the device does in it
        protocol["device"] = str(dig(m, "device", "name") or "n/a")
    slots = slot_frame(run, state)
    finals = slots[(slots["phase"] == FINAL) & ~slots["superseded"].astype(bool)][["model", "fid"]]
    return SweepFacts(run, list(p["spaces"]), protocol, _dataset(m), _backbone(state), finals)


def _dataset(manifest: dict) -> str:
    return str(dig(manifest, "dataset", "name") or dig(manifest, "config", "dataset") or "n/a")


def _backbone(state: dict) -> str:
    """The backbone(s) the sweep's trials built on: each slot names its own, none for the default
    (and for a variant with networks of its own, which takes no backbone)."""
    names = sorted({slot.get("backbone") or DEFAULT_BACKBONE for slot in state["slots"]})
    return ", ".join(names) or DEFAULT_BACKBONE


def _key(facts: SweepFacts) -> tuple:
    return frozenset(facts.variants), tuple(sorted(facts.protocol.items()))


def _group_facts(sweeps: list[RunFolder]) -> tuple[list[list[SweepFacts]], list[str]]:
    groups: list[list[SweepFacts]] = []
    for facts in map(sweep_facts, sweeps):
        group = next((g for g in groups if _key(g[0]) == _key(facts)), None)
        if group is None:
            groups.append([facts])
        else:
            group.append(facts)
    lines = [_why_apart(group, groups[:i]) for i, group in enumerate(groups) if i]
    return groups, lines


def sweep_groups(sweeps: list[RunFolder]) -> tuple[list[list[RunFolder]], list[str]]:
    """The sweeps that can share one cross table (the first sweep given leads the first table),
    and one line per further group saying why it is not in an earlier table."""
    groups, lines = _group_facts(sweeps)
    return [[facts.run for facts in group] for group in groups], lines


def _ids(group: list[SweepFacts]) -> str:
    return ", ".join(facts.run.run_id for facts in group)


def _why_apart(group: list[SweepFacts], earlier: list[list[SweepFacts]]) -> str:
    mine, its = group[0], "its" if len(group) == 1 else "their"
    reasons = []
    for other in earlier:
        theirs = other[0]
        why = []
        if set(mine.variants) != set(theirs.variants):
            why.append(f"{its} variants differ ({', '.join(mine.variants)} vs {', '.join(theirs.variants)})")
        names = list(dict.fromkeys([*mine.protocol, *theirs.protocol]))
        protocol = [_difference(name, mine.protocol.get(name), theirs.protocol.get(name)) for name in names
                    if mine.protocol.get(name) != theirs.protocol.get(name)]
        if protocol:
            why.append(f"{its} protocol differs ({'; '.join(protocol)})")
        reasons.append(f"the table of {_ids(other)}: {' and '.join(why)}")
    verb = "is" if len(group) == 1 else "are"
    return f"{_ids(group)} {verb} not in " + "; nor in ".join(reasons)


def _difference(name: str, mine: str | None, theirs: str | None) -> str:
    def shown(value):
        return "n/a (a sweep not on a wall-clock budget)" if value is None else value

    if name in ("K", "S"):
        return f"{name} = {shown(mine)} vs {name} = {shown(theirs)}"
    return f"{name} {shown(mine)} vs {shown(theirs)}"


def _labels(group: list[SweepFacts]) -> list[str]:
    """Each sweep's column header: its dataset and backbone, and its run id where they are shared."""
    plain = [f"{facts.dataset} / {facts.backbone}" for facts in group]
    labels = [label if plain.count(label) == 1 else f"{label} ({facts.run.run_id})"
              for label, facts in zip(plain, group, strict=True)]
    return [label if labels.count(label) == 1 else f"{label} #{i}" for i, label in enumerate(labels, 1)]


def _long(group: list[SweepFacts], number: int = 1) -> pd.DataFrame:
    """One row per sweep x variant of a group: the final FID's mean, interval, n and rank."""
    records = []
    for facts, label in zip(group, _labels(group), strict=True):
        cells = []
        for variant in group[0].variants:
            interval = fid_interval(facts.finals.loc[facts.finals["model"] == variant, "fid"])
            cells.append({"table": number, "run_id": facts.run.run_id, "dataset": facts.dataset,
                          "backbone": facts.backbone, "column": label, "variant": variant,
                          "fid_mean": interval.mean, "fid_low": interval.low, "fid_high": interval.high,
                          "n": interval.n})
        means = pd.Series([c["fid_mean"] for c in cells], dtype=float)
        ranks = means.rank(method="min").astype("Int64")  # 1: the lowest mean FID; ties share a rank
        records += [{**cell, "rank": rank} for cell, rank in zip(cells, ranks, strict=True)]
    return pd.DataFrame.from_records(records, columns=FRAME_COLUMNS).astype({"rank": "Int64"})


def _pivot(long: pd.DataFrame, labels: list[str], variants: list[str]) -> pd.DataFrame:
    table = long.pivot(index="variant", columns="column", values=FIELDS).swaplevel(axis=1)
    table = table.reindex(columns=pd.MultiIndex.from_product([labels, FIELDS]), index=variants)
    return table.astype({(label, field): "Int64" for label in labels for field in ("n", "rank")})


def cross_table(group: list[RunFolder]) -> pd.DataFrame:
    """Variants (rows) by sweeps: columns (sweep's header, field) for each field of ``FIELDS``."""
    facts = [sweep_facts(run) for run in group]
    return _pivot(_long(facts), _labels(facts), facts[0].variants)


def cross_frame(sweeps: list[RunFolder]) -> pd.DataFrame:
    """Every group's cross table in long form (one row per sweep x variant; ``table``: the group)."""
    groups, _ = _group_facts(sweeps)
    frames = [_long(group, number) for number, group in enumerate(groups, start=1)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FRAME_COLUMNS)


def kendall_taus(table: pd.DataFrame) -> list[Agreement]:
    """Kendall's tau-b between each pair of columns of a cross table, over the variants that
    have a mean FID in both (NaN where fewer than 2 have, or a column's FIDs are all equal)."""
    from scipy import stats  # 1.2 s to import: only where there are rankings to compare

    labels = list(dict.fromkeys(table.columns.get_level_values(0)))
    out = []
    for a, b in itertools.combinations(labels, 2):
        both = table[[(a, "fid_mean"), (b, "fid_mean")]].astype(float).dropna()
        tau = p = math.nan
        if len(both) >= 2:
            with warnings.catch_warnings():  # a constant column: scipy warns and gives NaN
                warnings.simplefilter("ignore")
                result = stats.kendalltau(both.iloc[:, 0], both.iloc[:, 1], variant="b")
            tau, p = float(result.statistic), float(result.pvalue)
        out.append(Agreement(a, b, tau, len(both), p))
    return out


def _cell(row: pd.Series, seeds: int) -> str:
    n = row["n"]
    if pd.isna(n) or n == 0:
        return "n/a"
    text = f"{row['fid_mean']:.1f}"
    if n >= 2 and math.isfinite(row["fid_low"]) and math.isfinite(row["fid_high"]):
        text += f" [{row['fid_low']:.1f}, {row['fid_high']:.1f}]"
    notes = [f"n={n}"] if n < seeds else []
    rank = f"#{row['rank']}"
    return f"{text} ({', '.join([*notes, rank])})"


def agreement_sentence(agreement: Agreement) -> list:
    """What one pair of columns says: tau, over how many variants, in words, and whether it could
    be told from chance."""
    a, b, tau, n, p = agreement
    head = Bold(f"Rankings of {a} and {b}: ")
    if not math.isfinite(tau):
        return [head, f"cannot be compared ({n} variant{'s' * (n != 1)} with a final FID in both, "
                      "or FIDs all equal in one of them)."]
    if tau == 1:
        words = "agree: the same order"
    elif tau == -1:
        words = "disagree: the reverse order"
    else:
        words = "partly agree" if tau > 0 else "disagree"
    significance = "significant" if p < SIGNIFICANCE else "not significant"
    text = f"Kendall's tau = {tau:.2f} over {n} variants ({words}); {fmt_p(p, 'p')}, {significance}"
    smallest = min(1.0, 2 / math.factorial(n))  # two-sided exact p of identical rankings
    if smallest >= SIGNIFICANCE:
        text += (f": with {n} variants even identical rankings give p = {smallest:.3f}, so no agreement "
                 "between them can be told from chance")
    return [head, text + "."]


def across_blocks(sweeps: list[RunFolder]) -> list:
    """The "Across sweeps" section of a report of two or more sweep folders ([] for fewer)."""
    if len(sweeps) < 2:
        return []
    groups, apart = _group_facts(sweeps)
    blocks: list = [Heading(2, "Across sweeps"), Para([METHOD])]
    if apart:
        blocks += [Para([Bold(f"{len(groups)} separate tables. "),
                         "Sweeps whose variants or protocol differ are never merged into one table:"]),
                   Bullets([[line] for line in apart])]
    for number, group in enumerate(groups, start=1):
        labels = _labels(group)
        table = _pivot(_long(group, number), labels, group[0].variants)
        seeds = int(group[0].protocol["S"])
        if len(groups) > 1:
            blocks.append(Heading(3, f"Table {number}: {_ids(group)}"))
        rows = [[variant, *(_cell(table.loc[variant, label], seeds) for label in labels)]
                for variant in table.index]
        blocks.append(Table(["variant", *labels], rows,
                            [False] + [True] * len(labels)))
        if len(group) < 2:
            blocks.append(Para(["One sweep only: no ranking to compare it with."]))
        blocks += [Para(agreement_sentence(agreement)) for agreement in kendall_taus(table)]
    return blocks
