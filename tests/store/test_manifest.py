"""Run folders written by earlier versions of bench still resume and report.

``tests/fixtures/run-format-0.1.0`` is a run folder in the format of bench 0.1.0, left as a
run killed during its second trial (its README says how it was made). Resumed by today's
code, that trial must finish with exactly the numbers of the uninterrupted run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES

FIXTURE = FIXTURES / "run-format-0.1.0"
# The uninterrupted run's numbers (fixture README).
FINAL_RECON_MSE = 0.07379508224266829
STEP_4_LOSS = 5507.232421875


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "00001-synthetic-4steps"
    shutil.copytree(FIXTURE, run, ignore=shutil.ignore_patterns("README.md"))
    return run


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_an_old_run_folder_resumes_exactly(cli, old_run):
    gan_before = [r for r in _rows(old_run / "metrics.jsonl") if r["model"] == "gan"]
    result = cli("run", "--resume", old_run, "--no-progress")
    assert "vae-s0: completed" in result.output
    rows = _rows(old_run / "metrics.jsonl")
    assert [r for r in rows if r["model"] == "gan"] == gan_before  # the finished trial is untouched
    final = [r for r in rows if r["model"] == "vae" and r["eval_point"] == "final"]
    assert len(final) == 1 and final[0]["status"] == "completed" and final[0]["step"] == 4
    assert final[0]["recon_mse"] == pytest.approx(FINAL_RECON_MSE, rel=1e-6)
    log = _rows(old_run / "trials" / "vae-s0" / "log.jsonl")
    assert [r["step"] for r in log] == [2, 4]
    assert log[-1]["loss"] == pytest.approx(STEP_4_LOSS, rel=1e-6)
    assert (old_run / "report.md").is_file()


def test_an_old_run_folder_reports(cli, old_run, tmp_path):
    cli("report", old_run, "--out", tmp_path / "report")
    summary = (tmp_path / "report" / "summary.csv").read_text()
    assert "gan" in summary and "vae" in summary
    report = (tmp_path / "report" / "report.md").read_text()
    assert "bench run --models gan,vae" in report  # the command line, from the old manifest
