"""``--tracker tensorboard``, read back with TensorBoard's own event-file reader."""

from __future__ import annotations

import numpy as np
import pytest
from tracked_run import EVAL_STEPS, LOSS_STEPS, LOSSES, TRIALS

from bench.store import read_jsonl
from bench.trackers import TrialInfo
from bench.trackers.tensorboard import TensorBoardTracker


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def session(accumulator, kind):
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")[f"_hparams_/{kind}"]
    return getattr(plugin_data_pb2.HParamsPluginData.FromString(content), kind)


def trial(folder, name="gan-s0") -> TrialInfo:
    return TrialInfo(run_id="00001-x", trial=name, model="gan", family="gan", backbone="dcgan", seed=0,
                     config={"lr": 2e-4, "loss": "hinge", "spectral": True, "betas": [0.5, 0.999]},
                     run_config={"dataset": "synthetic", "batch_size": 16}, directory=folder)


def test_a_trial_resumed_in_its_folder_logs_each_step_once(tmp_path):
    first = TensorBoardTracker()
    first.start_trial(trial(tmp_path))
    for step in (2, 4, 6):
        first.log_train(step, {"loss_d": step / 10, "images_per_s": 100.0})
    first.log_eval(4, {"trial": "gan-s0", "step": 4, "fid": 30.0, "small_n": True, "eval_ref": "train"})
    first.log_images(4, "samples", np.zeros((10, 12, 3), np.uint8))
    # killed here, unclosed; resumed from its checkpoint at step 4, it trains 6 and 8 again
    again = TensorBoardTracker()
    again.start_trial(trial(tmp_path))
    for step in (6, 8):
        again.log_train(step, {"loss_d": 1.0, "images_per_s": 100.0})
    again.end_trial("completed", None)
    found = events(tmp_path)
    points = found.Scalars("train/loss_d")
    assert [e.step for e in points] == [2, 4, 6, 8]  # 6 as first logged, once
    assert [e.value for e in points] == pytest.approx([0.2, 0.4, 0.6, 1.0])
    assert [e.step for e in found.Scalars("eval/fid")] == [4]
    assert "eval/small_n" not in found.Tags()["scalars"]  # only numbers, not where a row comes from
    (image,) = found.Images("images/samples")
    assert (image.step, image.width, image.height) == (4, 12, 10)
    start = session(found, "session_start_info")
    assert start.group_name == "gan" and start.hparams["loss"].string_value == "hinge"
    assert start.hparams["spectral"].bool_value and start.hparams["run.batch_size"].number_value == 16
    assert start.hparams["betas"].string_value == "[0.5, 0.999]"
    assert session(found, "session_end_info").status == 1  # STATUS_SUCCESS


@pytest.mark.slow
def test_every_trial_is_a_run_with_its_losses_metrics_pictures_and_hparams(tracked_run):
    """Each trial's losses at each logging interval and every numeric column of its evaluation rows at
    their steps, the pictures of each evaluation and its hyperparameters, beside the HParams view's
    final status; the trial killed in its 4th step and resumed holds each of its steps once."""
    rows = read_jsonl(tracked_run / "metrics.jsonl")
    for name in TRIALS:
        folder = tracked_run / "trials" / name
        found = events(folder)
        logged = read_jsonl(folder / "log.jsonl")
        assert [r["step"] for r in logged] == LOSS_STEPS
        for loss in (*LOSSES, "images_per_s"):
            points = found.Scalars(f"train/{loss}")
            assert [e.step for e in points] == LOSS_STEPS, (name, loss)
        for loss in LOSSES:
            values = [e.value for e in found.Scalars(f"train/{loss}")]
            assert values == pytest.approx([r[loss] for r in logged])
        own = [r for r in rows if r["trial"] == name]
        assert [r["step"] for r in own] == EVAL_STEPS
        for column in ("eval_seconds", "recon_mse", "fid", "train_images_per_s"):
            steps = [r["step"] for r in own if column in r]
            assert [e.step for e in found.Scalars(f"eval/{column}")] == steps, (name, column)
        assert sorted(found.Tags()["images"]) == ["images/reconstructions", "images/samples"]
        for tag in ("images/samples", "images/reconstructions"):
            assert [e.step for e in found.Images(tag)] == EVAL_STEPS
        start = session(found, "session_start_info")
        assert start.hparams["width"].number_value == 8 and start.hparams["latent"].number_value == 16
        assert start.hparams["model"].string_value == "dies" and start.group_name == "dies"
        assert start.hparams["seed"].number_value == int(name[-1])
        assert session(found, "session_end_info").status == 1
    killed_and_resumed = tracked_run / "trials" / "dies-s0"
    assert len(list(killed_and_resumed.glob("events.out.tfevents.*"))) == 2  # a file per attempt
