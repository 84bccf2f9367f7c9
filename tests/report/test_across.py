"""Across sweeps: one table of the same variants swept on different datasets or backbones, the
Kendall tau of each pair of its columns, and sweeps that differ kept in tables of their own.

Sweep folders are written with run_folders' ``make_sweep``: known final FIDs, no training.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from run_folders import make_sweep

from bench.report.across import (
    across_blocks,
    cross_frame,
    cross_table,
    kendall_taus,
    sweep_groups,
)
from bench.report.load import load_run
from bench.report.render import Table, to_markdown
from bench.report.stats import fid_interval, t_interval
from bench.store.sweep import write_sweep

VARIANTS = ["gan", "vae", "wgan-gp", "vaegan"]
SEARCH = {v: [70.0 + i, 90.0 + i] for i, v in enumerate(VARIANTS)}  # K = 2
# Final FIDs (S = 3) by rank: LEVELS[r] are the FIDs of the variant ranked r + 1.
LEVELS = [[40.0, 42.0, 44.0], [60.0, 62.0, 64.0], [80.0, 82.0, 84.0], [100.0, 102.0, 104.0]]


def ranked(ranks, scale=1.0) -> dict[str, list[float]]:
    """Final FIDs that rank VARIANTS as ``ranks`` (1 = lowest mean FID)."""
    return {v: [scale * x for x in LEVELS[r - 1]] for v, r in zip(VARIANTS, ranks, strict=True)}


def sweep(tmp_path, name, ranks=(1, 2, 3, 4), *, dataset="synthetic", search=None, final=None, scale=1.0):
    path = make_sweep(tmp_path, name, search=search or SEARCH, final=final or ranked(ranks, scale),
                      dataset=dataset)
    return load_run(path, [])


def markdown(blocks, tmp_path) -> str:
    """The rendered blocks with markdown's backslash escapes removed, as they read."""
    return re.sub(r"\\(.)", r"\1", to_markdown(blocks, tmp_path))


def test_planted_two_sweeps_have_a_known_kendall_tau(tmp_path):
    a = sweep(tmp_path, "00001-a", (1, 2, 3, 4))
    b = sweep(tmp_path, "00002-b", (1, 3, 2, 4), dataset="cifar10", scale=0.5)
    table = cross_table([a, b])
    assert list(table.index) == VARIANTS
    assert list(table[("synthetic / dcgan", "rank")]) == [1, 2, 3, 4]
    assert list(table[("cifar10 / dcgan", "rank")]) == [1, 3, 2, 4]
    # Of the 6 pairs of 4 variants only (vae, wgan-gp) is ordered differently: 5 concordant, 1
    # discordant, no ties, so tau = (5 - 1) / 6 = 2/3. Exact two-sided p: of the 24 orders of 4, 1 has
    # no inversion and 3 have one, so P(tau >= 2/3) = 4/24 and p = 2 * 4/24 = 1/3.
    [(col_a, col_b, tau, n, p)] = kendall_taus(table)
    assert (col_a, col_b, n) == ("synthetic / dcgan", "cifar10 / dcgan", 4)
    assert tau == pytest.approx(2 / 3) and p == pytest.approx(1 / 3)


@pytest.mark.parametrize("ranks, tau", [((1, 2, 3, 4), 1.0), ((4, 3, 2, 1), -1.0)], ids=["same", "reversed"])
def test_identical_rankings_give_tau_one_and_reversed_minus_one(tmp_path, ranks, tau):
    a = sweep(tmp_path, "00001-a")
    b = sweep(tmp_path, "00002-b", ranks, dataset="cifar10")
    [agreement] = kendall_taus(cross_table([a, b]))
    # the exact two-sided p of a perfect (or perfectly reversed) order of 4: 2 of the 24 orders
    assert agreement.tau == pytest.approx(tau) and agreement.p == pytest.approx(2 / 24)
    text = markdown(across_blocks([a, b]), tmp_path)
    words = "agree: the same order" if tau > 0 else "disagree: the reverse order"
    assert f"Kendall's tau = {tau:.2f} over 4 variants ({words}); p = 0.083, not significant" in text
    assert "with 4 variants even identical rankings give p = 0.083" in text


def test_intervals_are_fid_intervals_of_the_final_seeds_and_never_below_zero(tmp_path):
    final = ranked((1, 2, 3, 4))
    final["vaegan"] = [5.0, 60.0, 240.0]  # a spread whose t-interval reaches below zero
    assert t_interval(final["vaegan"]).low < 0
    a, b = sweep(tmp_path, "00001-a", final=final), sweep(tmp_path, "00002-b", dataset="cifar10")
    table = cross_table([a, b])
    column = "synthetic / dcgan"
    for variant, values in final.items():
        expected = fid_interval(values)
        cell = table.loc[variant, column]
        assert (cell["fid_mean"], cell["fid_low"], cell["fid_high"]) == (
            pytest.approx(expected.mean), pytest.approx(expected.low), pytest.approx(expected.high))
        assert cell["n"] == 3 and cell["fid_low"] > 0
    assert table.loc["vaegan", (column, "rank")] == 4  # mean 101.7: still the last
    frame = cross_frame([a, b])
    assert len(frame) == 8 and set(frame["run_id"]) == {"00001-a", "00002-b"}
    assert (frame["fid_low"] > 0).all()


def test_markdown_has_the_table_and_the_tau_sentence(tmp_path):
    a = sweep(tmp_path, "00001-a")
    b = sweep(tmp_path, "00002-b", (1, 3, 2, 4), dataset="cifar10")
    blocks = across_blocks([a, b])
    text = markdown(blocks, tmp_path)
    assert text.startswith("## Across sweeps")
    assert "| variant | synthetic / dcgan | cifar10 / dcgan |" in text
    gan = fid_interval([40.0, 42.0, 44.0])
    assert f"| gan | {gan.mean:.1f} [{gan.low:.1f}, {gan.high:.1f}] (#1) | " in text
    assert "| vae | 62.0 [" in text and "(#2) | 82.0 [" in text and "(#3) |" in text
    assert ("**Rankings of synthetic / dcgan and cifar10 / dcgan:** Kendall's tau = 0.67 over 4 variants "
            "(partly agree); p = 0.333, not significant") in text
    assert "separate tables" not in text and sum(isinstance(b, Table) for b in blocks) == 1
    assert across_blocks([a]) == []


def test_sweeps_whose_variants_or_protocol_differ_get_tables_of_their_own(tmp_path):
    a = sweep(tmp_path, "00001-a")
    b = sweep(tmp_path, "00002-b", (1, 3, 2, 4), dataset="cifar10")
    two = {v: SEARCH[v] for v in ("gan", "vae")}
    c = sweep(tmp_path, "00003-c", search=two, final={v: ranked((1, 2, 3, 4))[v] for v in two})
    d = sweep(tmp_path, "00004-d", search={v: [*s, 95.0] for v, s in SEARCH.items()})  # K = 3
    groups, lines = sweep_groups([a, b, c, d])
    assert [[r.run_id for r in g] for g in groups] == [["00001-a", "00002-b"], ["00003-c"], ["00004-d"]]
    assert lines == [
        "00003-c is not in the table of 00001-a, 00002-b: its variants differ (gan, vae vs gan, vae, "
        "wgan-gp, vaegan)",
        "00004-d is not in the table of 00001-a, 00002-b: its protocol differs (K = 3 vs K = 2); nor in the "
        "table of 00003-c: its variants differ (gan, vae, wgan-gp, vaegan vs gan, vae) and its protocol "
        "differs (K = 3 vs K = 2)",
    ]
    blocks = across_blocks([a, b, c, d])
    assert sum(isinstance(block, Table) for block in blocks) == 3  # never a silent mix
    text = markdown(blocks, tmp_path)
    assert "3 separate tables." in text and all(f"- {line}" in text for line in lines)
    assert "### Table 2: 00003-c" in text and "One sweep only" in text
    assert list(cross_frame([a, b, c, d]).groupby("table").size()) == [8, 2, 4]


def test_a_different_budget_is_a_different_protocol(tmp_path):
    a = sweep(tmp_path, "00001-a")
    b = sweep(tmp_path, "00002-b", dataset="cifar10")
    b.manifest["budget"] = {"text": "200steps", "kind": "steps", "amount": 200.0}
    _, lines = sweep_groups([a, b])
    assert lines == ["00002-b is not in the table of 00001-a: its protocol differs (budget 200 steps vs "
                     "100 steps)"]


def test_columns_are_named_by_dataset_and_backbone(tmp_path):
    a = sweep(tmp_path, "00001-a")
    b = sweep(tmp_path, "00002-b", (1, 3, 2, 4))
    state = json.loads((b.path / "sweep.json").read_text())
    for slot in state["slots"]:  # the trials of `bench sweep --backbone resnet` name their backbone
        slot["backbone"] = "resnet"
    write_sweep(b.path, {k: v for k, v in state.items() if k not in ("format", "protocol_digest")})
    c = sweep(tmp_path, "00003-c", (4, 3, 2, 1))  # the dataset and backbone of a: told by its run id
    table = cross_table([a, b, c])
    assert list(dict.fromkeys(table.columns.get_level_values(0))) == [
        "synthetic / dcgan (00001-a)", "synthetic / resnet", "synthetic / dcgan (00003-c)"]
    taus = {(x, y): tau for x, y, tau, _, _ in kendall_taus(table)}
    assert list(taus.values()) == [pytest.approx(2 / 3), pytest.approx(-1.0), pytest.approx(-2 / 3)]


def test_a_variant_without_a_final_fid_is_left_out_of_the_ranking(tmp_path):
    final = ranked((1, 2, 3, 4))
    final["vaegan"] = [None, None, None]  # every final seed diverged
    a = sweep(tmp_path, "00001-a", final=final)
    b = sweep(tmp_path, "00002-b", (1, 3, 2, 4), dataset="cifar10")
    table = cross_table([a, b])
    assert table.loc["vaegan", ("synthetic / dcgan", "n")] == 0
    assert table[("synthetic / dcgan", "rank")].isna().tolist() == [False, False, False, True]
    [agreement] = kendall_taus(table)
    assert agreement.n == 3 and agreement.tau == pytest.approx(1 / 3)  # 2 concordant, 1 discordant
    text = markdown(across_blocks([a, b]), tmp_path)
    assert "| vaegan | n/a | " in text and "over 3 variants (partly agree)" in text
    one = {v: ranked((1, 2, 3, 4))[v] if v == "gan" else [None] * 3 for v in VARIANTS}
    [lonely] = kendall_taus(cross_table([sweep(tmp_path, "00003-c", final=one), b]))
    assert lonely.n == 1 and math.isnan(lonely.tau)
