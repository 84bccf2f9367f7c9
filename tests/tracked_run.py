"""One tracked run that the trackers' tests read back (``tests/trackers/conftest.py`` makes it once
per session): two seeds of a VAE, the first killed mid-trial then resumed, with ``--tracker
tensorboard,mlflow`` at MLflow's default location (a SQLite database in the run folder)."""

from __future__ import annotations

from pathlib import Path

from helpers import only_run, write_plugin

# A VAE whose process dies (exit status 137, as a SIGKILL's) in its 4th step while the file named
# by $BENCH_TEST_STOP exists: after the checkpoint at step 2 and the points of step 3, before any
# tracker hears of an end. It removes the file, so the resumed run trains on.
DIES_ONCE = '''
import os
from pathlib import Path

from bench import hookimpl
from bench_plugins.vae import VAE


class DiesOnce(VAE):
    def train_step(self, batch):
        self.calls = getattr(self, "calls", 0) + 1
        stop = Path(os.environ["BENCH_TEST_STOP"])
        if self.calls == 4 and stop.exists():
            stop.unlink()
            raise SystemExit(137)
        return super().train_step(batch)


@hookimpl
def bench_register_models(register):
    register("dies", DiesOnce)
'''

# 4 steps, a loss point every step, a checkpoint and an evaluation every 2 (and the final one at 4)
TRACKED_RUN = ["run", "--models", "dies", "--seeds", "2", "--dataset", "synthetic:128", "--budget", "4steps",
               "--batch-size", "16", "--log-every", "1", "--checkpoint-every", "2steps",
               "--eval-every", "2steps", "--eval-samples", "0", "--recon-samples", "16", "--no-progress",
               "--set", "dies.width=8", "--set", "dies.latent=16", "--tracker", "tensorboard,mlflow"]
TRIALS = ("dies-s0", "dies-s1")  # the first is killed in its 4th step
LOSSES = ("loss", "recon", "kl")
LOSS_STEPS = [1, 2, 3, 4]
EVAL_STEPS = [2, 4]


def tracked_run(folder: Path) -> Path:
    """The run folder, after the kill (exit 137 in dies-s0's 4th step) and ``bench run --resume``."""
    from click.testing import CliRunner

    from bench.cli import main

    stop = folder / "stop"
    stop.touch()
    plugin = write_plugin(folder, "dies.py", DIES_ONCE)
    env = {"BENCH_TEST_STOP": str(stop), "MLFLOW_TRACKING_URI": None, "MLFLOW_EXPERIMENT_NAME": None}
    runner = CliRunner(env=env)
    killed = runner.invoke(main, [*TRACKED_RUN, "--plugin", str(plugin),
                                  "--results-dir", str(folder / "results")])
    assert killed.exit_code == 137 and not stop.exists(), killed.output
    run_dir = only_run(folder / "results")
    resumed = runner.invoke(main, ["run", "--resume", str(run_dir), "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    assert "warning" not in resumed.output and "warning" not in killed.output, (killed.output, resumed.output)
    return run_dir
