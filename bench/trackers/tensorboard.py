"""``--tracker tensorboard``: TensorBoard event files, one writer per trial in its trial folder.

``tensorboard --logdir results/RUN`` then shows each trial as a run of its own
(``trials/gan-s0``): ``train/<loss>`` and ``train/images_per_s`` at each logging interval,
``eval/<column>`` at each evaluation's step, ``images/samples`` and ``images/reconstructions``
at each evaluation, and in the HParams view each trial's hyperparameters (``TrialInfo.hparams``)
beside its final metrics; the trials that differ only in their seed share a session group.
Written with TensorBoard's own writer (``torch.utils.tensorboard``), flushed at every call, so a
killed trial's file holds everything it logged. A resumed trial logs from the step after the
last ``train/`` step its folder's event files hold (a new file beside them): no point twice.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.trackers.base import EVAL, IMAGES, TRAIN, Tracker, TrialInfo, image_array, row_metrics

EVENT_FILES = "events.out.tfevents.*"
# bench's trial statuses -> the HParams view's session statuses
# (an interrupted trial's session is still running: --resume continues it)
SESSION_STATUS = {"completed": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE", "failed": "STATUS_FAILURE",
                  "interrupted": "STATUS_RUNNING"}


class TensorBoardTracker(Tracker):
    install_hint = "pip install 'bench-gen[tensorboard]'"

    @classmethod
    def check(cls, uri):
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ValueError(f"needs the tensorboard package, which is not installed: {cls.install_hint}"
                             ) from None

    def start_trial(self, trial: TrialInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.logged = last_step(trial.directory, TRAIN)  # a resumed trial's points already there
        self.writer = SummaryWriter(str(trial.directory))
        self._session("session_start_info", _start_info(trial))

    def log_train(self, step, values):
        if step <= self.logged:
            return
        for key, value in values.items():
            self.writer.add_scalar(TRAIN + key, value, step)
        self.writer.flush()

    def log_eval(self, step, row):
        for key, value in row_metrics(row).items():
            self.writer.add_scalar(EVAL + key, value, step)
        self.writer.flush()

    def log_images(self, step, name, image):
        self.writer.add_image(IMAGES + name, image_array(image), step, dataformats="HWC")
        self.writer.flush()

    def end_trial(self, status, final_row):
        from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

        ended = api_pb2.Status.Value(SESSION_STATUS.get(status, "STATUS_UNKNOWN"))
        end = plugin_data_pb2.SessionEndInfo(status=ended, end_time_secs=time.time())
        self._session("session_end_info", end)
        self.writer.close()

    def _session(self, kind: str, info) -> None:
        """One of the HParams plugin's session records (``_hparams_/session_start_info``...)."""
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.plugins.hparams import plugin_data_pb2

        content = plugin_data_pb2.HParamsPluginData(version=0, **{kind: info})
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="hparams", content=content.SerializeToString()))
        self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=f"_hparams_/{kind}",
                                                                         metadata=metadata)]))
        self.writer.flush()


def _start_info(trial: TrialInfo):
    from tensorboard.plugins.hparams import plugin_data_pb2

    info = plugin_data_pb2.SessionStartInfo(group_name=trial.group, start_time_secs=time.time())
    for key, value in trial.hparams().items():
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[key].number_value = value
        else:
            info.hparams[key].string_value = value
    return info


def last_step(directory: Path, prefix: str) -> int:
    """The last step of a scalar whose tag starts with ``prefix`` in the event files of
    ``directory`` (-1: none). A truncated last record (a killed writer) ends a file's reading."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    last = -1
    for path in sorted(Path(directory).glob(EVENT_FILES)):
        try:
            for event in EventFileLoader(str(path)).Load():
                if any(v.tag.startswith(prefix) for v in event.summary.value):
                    last = max(last, event.step)
        except Exception:  # damaged beyond its last record: what was read stands
            continue
    return last
