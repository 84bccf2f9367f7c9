"""`bench sweep --resume` and `bench report` on a sweep folder that was damaged or edited: one line
that says what is wrong and what to do, never a traceback, and no finished trial retrained.

One tiny real sweep (one model, K = 2, S = 1, 2-step trials) is built once per module; each case
damages a copy of it."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import fixed_peak, requires_weights

import bench.run
from bench.space import parse_distribution
from bench.store.sweep import first_problem

# Small networks, 2 steps, FID on 4 samples against 8 images: the sweep's only cost is starting up.
TRIALS = ["--dataset", "synthetic:64", "--budget", "2steps", "--batch-size", "16", "--log-every", "2",
          "--eval-samples", "4", "--ref-samples", "8", "--set", "gan.width=8", "--set", "gan.latent=16"]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """A finished sweep folder (K = 2 search trials and S = 1 final trial of gan); copy it, never
    change it."""
    from bench.cli import run_config
    from bench.sweep.protocol import SweepProtocol
    from bench.sweep.run import run_sweep, start_sweep

    with pytest.MonkeyPatch.context() as patch:  # the MFU denominator: not what is tested here
        patch.setattr(bench.run, "cached_peaks", fixed_peak)
        config = run_config({**_parsed(TRIALS), "models": ["gan"]})
        sweep = start_sweep(config, SweepProtocol(samples=2, final_seeds=1),
                            tmp_path_factory.mktemp("sweep"), "test", progress=False)
        statuses = run_sweep(sweep)
    assert list(statuses.values()) == ["completed"] * 3, statuses
    return sweep.directory


def _parsed(args: list[str]) -> dict:
    """The click parameters of ``bench sweep ARGS`` (defaults filled in)."""
    from bench.cli import sweep_command

    ctx = sweep_command.make_context("sweep", ["--models", "gan", *args, "--no-progress"])
    return ctx.params


@pytest.fixture
def sweep_copy(finished_sweep, tmp_path):
    return shutil.copytree(finished_sweep, tmp_path / finished_sweep.name)


def edit_state(folder, change) -> None:
    path = folder / "sweep.json"
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state))


def one_line(result) -> str:
    """The command's whole output: one line, no traceback."""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def untouched(folder, finished_sweep) -> bool:
    """The trials' rows are those the finished sweep wrote: nothing trained again."""
    return (folder / "metrics.jsonl").read_bytes() == (finished_sweep / "metrics.jsonl").read_bytes()


# -- 1. sweep.json checked on read ----------------------------------------------------------------

DAMAGE = {  # what is done to sweep.json -> what the one line names
    "protocol emptied": (lambda s: s.update(protocol={}), "protocol has no 'samples'"),
    "a slot without its trial": (lambda s: s["slots"][0].pop("trial"), "slot 0 has no 'trial'"),
    "slots a string": (lambda s: s.update(slots="none"), 'slots is "none", not a list'),
    "a space text cut short": (lambda s: s["protocol"]["spaces"]["gan"].update(lr="loguniform(1e-2"),
                               "protocol.spaces.gan.lr does not parse"),
    "a choice without its options": (lambda s: s["chosen"]["gan"].pop("options"),
                                     "chosen.gan has no 'options'"),
}


def test_every_departure_from_the_format_is_named():
    state = {"format": 1, "slots": [], "chosen": {},
             "protocol": {"samples": 2, "final_seeds": 1, "seed": 0, "trial_seed": 0, "sampler": "random",
                          "metric": "fid", "spaces": {"gan": {"lr": "loguniform(1e-05,0.01)"}}}}
    assert first_problem(state, parse_distribution) is None
    slot = {"model": "gan", "phase": "search", "index": 0, "options": {}, "seed": 0, "trial": "gan-s0",
            "optuna_number": 0, "told": None}
    assert first_problem({**state, "slots": [slot]}, parse_distribution) is None
    for change, expected in DAMAGE.values():
        damaged = json.loads(json.dumps({**state, "slots": [slot], "chosen": {"gan": {
            "trial": "gan-s0", "options": {}, "value": 1.0}}}))
        change(damaged)
        assert expected in first_problem(damaged, parse_distribution)
    assert "format is 2" in first_problem({**state, "format": 2}, parse_distribution)
    assert "samples is true, not a whole number >= 1" in first_problem(
        {**state, "protocol": {**state["protocol"], "samples": True}}, parse_distribution)
    assert "slot 0.model is \"vae\", not one of the protocol's models (gan)" in first_problem(
        {**state, "slots": [{**slot, "model": "vae"}]}, parse_distribution)


@pytest.mark.slow
@requires_weights
@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_sweep_json_is_one_line_for_resume(cli, sweep_copy, finished_sweep, case):
    change, expected = DAMAGE[case]
    edit_state(sweep_copy, change)
    line = one_line(cli("sweep", "--resume", sweep_copy, "--no-progress", expect_exit=1))
    assert f"the sweep state {sweep_copy / 'sweep.json'} is damaged: {expected}" in line
    assert "restore it from a copy" in line and "rows" in line and "checkpoints are untouched" in line
    assert untouched(sweep_copy, finished_sweep)


@pytest.mark.slow
@requires_weights
def test_a_truncated_sweep_json_is_one_line_for_resume_and_report(cli, sweep_copy):
    path = sweep_copy / "sweep.json"
    path.write_bytes(path.read_bytes()[:200])
    line = one_line(cli("sweep", "--resume", sweep_copy, "--no-progress", expect_exit=1))
    assert f"{path} is damaged: it is not valid JSON" in line and "restore it from a copy" in line
    report = cli("report", sweep_copy).output  # the report keeps the rows and warns in one line
    warned = [w for w in report.splitlines() if w.startswith("warning:") and "sweep.json" in w]
    assert len(warned) == 1 and f"{path} is damaged: it is not valid JSON" in warned[0]


@pytest.mark.slow
@requires_weights
def test_a_damaged_sweep_json_is_one_line_for_report_and_its_rows_are_still_reported(cli, sweep_copy):
    change, expected = DAMAGE["a choice without its options"]  # every case fails in the one read_sweep
    edit_state(sweep_copy, change)
    result = cli("report", sweep_copy)
    warned = [line for line in result.output.splitlines()
              if line.startswith("warning:") and "sweep.json" in line]
    assert len(warned) == 1 and f"{sweep_copy / 'sweep.json'} is damaged: {expected}" in warned[0]
    report = (sweep_copy / "report.md").read_text()
    assert "is damaged" in report and "Ranking by FID" in report  # the rows, as a plain run's


# -- 4. the right resume for the right folder -----------------------------------------------------

@pytest.mark.slow
@requires_weights
def test_each_resume_refuses_the_other_commands_folder(cli, sweep_copy, finished_sweep, tmp_path):
    line = one_line(cli("run", "--resume", sweep_copy, "--no-progress", expect_exit=1))
    assert f"{sweep_copy} is a sweep folder" in line
    assert f"continue it with: bench sweep --resume {sweep_copy}" in line
    assert untouched(sweep_copy, finished_sweep) and not (sweep_copy / "trials" / "gan-s0").exists()

    plain = tmp_path / "plain-run"  # a run folder of `bench run`: what a sweep folder is without its sweep
    plain.mkdir()
    shutil.copy(sweep_copy / "manifest.json", plain)
    line = one_line(cli("sweep", "--resume", plain, "--no-progress", expect_exit=1))
    assert "is a run folder of `bench run`, not a sweep" in line and f"bench run --resume {plain}" in line


def test_options_beside_resume_are_refused_with_what_the_command_takes(cli, tmp_path):
    """A bad command line (exit 2): click's usage, then the one line that says what to do."""
    out = cli("sweep", "--resume", tmp_path, "--samples", "5", expect_exit=2).output
    assert ("does not take --samples (beside --resume, bench sweep takes only --add-samples and "
            "--progress/--no-progress)") in out
    assert f"to draw more settings per variant: bench sweep --resume {tmp_path} --add-samples N" in out
    assert "--add-samples needs --resume" in cli("sweep", "--add-samples", "2", expect_exit=2).output
    assert "--retry-failed" not in out and "Traceback" not in out
    out = cli("run", "--resume", tmp_path, "--budget", "8steps", expect_exit=2).output
    assert "bench run takes only --retry-failed and --progress/--no-progress" in out


# -- 2. optuna.db is derived state ---------------------------------------------------------------

def study_trials(folder) -> list[tuple]:
    """Each trial of the gan study: (number, state, params, value)."""
    import optuna

    study = optuna.load_study(study_name="gan", storage=f"sqlite:///{folder / 'optuna.db'}")
    return [(t.number, t.state.name, t.params, t.value) for t in study.get_trials()]


@pytest.mark.slow
@requires_weights
@pytest.mark.parametrize("damage", ["random bytes", "deleted"])
def test_a_lost_or_damaged_study_is_rebuilt_from_the_record(cli, sweep_copy, finished_sweep, damage):
    original = study_trials(finished_sweep)
    assert [(n, s) for n, s, _, _ in original] == [(0, "COMPLETE"), (1, "COMPLETE")]
    study = sweep_copy / "optuna.db"
    if damage == "deleted":  # and the last FID not yet in sweep.json (a kill just after telling it)
        study.unlink()
        edit_state(sweep_copy, lambda s: s["slots"][1].update(told=None))
    else:
        study.write_bytes(bytes(range(256)) * 16)
    out = cli("sweep", "--resume", sweep_copy, "--no-progress").output
    assert "Traceback" not in out
    warning = [line for line in out.splitlines() if line.startswith("warning: ")][0]
    assert "it is derived state, so it was rebuilt from sweep.json and the trials' rows" in warning
    if damage == "deleted":
        assert f"{study} is missing" in warning
    else:
        assert "cannot be read" in warning and "kept as optuna.db.damaged-1" in warning
        assert (sweep_copy / "optuna.db.damaged-1").read_bytes() == bytes(range(256)) * 16  # never deleted
    rebuilt = study_trials(sweep_copy)
    assert [(n, s, v) for n, s, _, v in rebuilt] == [(n, s, pytest.approx(v)) for n, s, _, v in original]
    assert [p for *_, p, _ in rebuilt] == [pytest.approx(p) for *_, p, _ in original]
    assert untouched(sweep_copy, finished_sweep)  # no trial trained again
    told = [s["told"] for s in json.loads((sweep_copy / "sweep.json").read_text())["slots"][:2]]
    assert told == [pytest.approx(v) for *_, v in original]  # the untold one told from its rows


# -- 3. more samples on purpose -------------------------------------------------------------------

@pytest.mark.slow
@requires_weights
@pytest.mark.parametrize("k", [3, 1])
def test_a_protocol_edited_by_hand_is_refused_pointing_to_add_samples(cli, sweep_copy, finished_sweep, k):
    edit_state(sweep_copy, lambda s: s["protocol"].update(samples=k))
    line = one_line(cli("sweep", "--resume", sweep_copy, "--no-progress", expect_exit=1))
    assert "was edited by hand" in line and f"bench sweep --resume {sweep_copy} --add-samples N" in line
    assert untouched(sweep_copy, finished_sweep)


@pytest.mark.slow
@requires_weights
def test_add_samples_draws_what_a_larger_sweep_would_and_chooses_again(cli, sweep_copy, finished_sweep):
    from bench.space import sample_settings, sampler_seed
    from bench.store import read_jsonl

    before = json.loads((sweep_copy / "sweep.json").read_text())
    old_final = [s for s in before["slots"] if s["phase"] == "final"]
    # The earlier samples' FIDs made worse, so that the new one is the best and the choice changes.
    rows = read_jsonl(sweep_copy / "metrics.jsonl")
    search = {s["trial"] for s in before["slots"] if s["phase"] == "search"}
    worse = [{**r, "fid": 1e6} if r.get("trial") in search and r.get("eval_point") == "final" else r
             for r in rows]
    (sweep_copy / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in worse))

    out = cli("sweep", "--resume", sweep_copy, "--add-samples", "1", "--no-progress").output
    assert "Traceback" not in out
    state = json.loads((sweep_copy / "sweep.json").read_text())
    drawn = [s for s in state["slots"] if s["phase"] == "search"]
    space = {f: parse_distribution(t) for f, t in state["protocol"]["spaces"]["gan"].items()}
    assert [s["options"] for s in drawn] == sample_settings(space, 3, sampler_seed(0, "gan"),
                                                            study_name="gan")
    assert drawn[:2] == before["slots"][:2] and state["protocol"]["samples"] == 3  # K + N from the start
    assert state["chosen"]["gan"]["trial"] == drawn[2]["trial"]
    finals = [s for s in state["slots"] if s["phase"] == "final"]
    assert [s["trial"] for s in finals if s.get("superseded")] == [s["trial"] for s in old_final]
    current = [s for s in finals if not s.get("superseded")]
    assert len(current) == 1 and current[0]["options"] == drawn[2]["options"]
    trained = [r["trial"] for r in read_jsonl(sweep_copy / "metrics.jsonl") if r.get("eval_point") == "final"]
    assert sorted(trained) == sorted([*(s["trial"] for s in before["slots"]), drawn[2]["trial"],
                                      current[0]["trial"]])  # each trained once: nothing retrained
    report = (sweep_copy / "report.md").read_text()
    assert "K = 3 (2 + 1: more added with --add-samples)" in report
    import pandas as pd

    table = pd.read_csv(sweep_copy / "sweep.csv")
    assert table["superseded"].tolist() == [False, False, True, False, False]
