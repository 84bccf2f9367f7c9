"""``--tracker mlflow``: one MLflow run per bench run, one nested run per trial.

The run's MLflow run (named after the run folder) holds the run config as params and, at its end,
the report (``report/``); each trial's nested run holds the trial's hyperparameters as params
(``TrialInfo.hparams``), ``train/<loss>`` and ``train/images_per_s`` by step, ``eval/<column>``
at each evaluation's step, the pictures of each evaluation (``images/step-<N>/<name>.png``)
and the tags ``family``, ``backbone``, ``model``, ``seed``, ``sweep_phase``, ``status``.

Where: ``--tracker-uri`` (env ``MLFLOW_TRACKING_URI``), else a SQLite database in the run folder
(``sqlite:///RUN/mlflow.db``, artifacts in ``RUN/mlartifacts``), which ``mlflow ui
--backend-store-uri sqlite:///RUN/mlflow.db`` reads. The experiment is ``$MLFLOW_EXPERIMENT_NAME``
or ``bench``. The driver creates the run's MLflow run and records its id in the run's config
(``tracker_state``): ``--resume`` continues it, and Ray workers attach their trials to it. A
resumed trial continues its own nested run (found by its ``bench.trial`` tag while it is
running or killed) from the step after its last ``train/`` point; a trial trained again with
``--retry-failed`` gets a new one.

Training points are logged asynchronously (MLflow's queue; the step does not wait for the
database) and waited for when the trial ends.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from bench.trackers.base import (
    EVAL,
    IMAGES,
    TRAIN,
    RunInfo,
    Tracker,
    TrialInfo,
    flat,
    image_array,
    row_metrics,
)

URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "bench"
DATABASE = "mlflow.db"  # the default store, in the run folder
ARTIFACTS = "mlartifacts"
SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "file", "databricks")
# bench's trial and run statuses -> MLflow's run statuses
RUN_STATUS = {"completed": "FINISHED", "incomplete": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
              "interrupted": "KILLED"}
RESUMABLE = ("RUNNING", "KILLED")  # a nested run in one of these is a trial to continue
# The files of bench.report.build_report that go with the run's MLflow run.
REPORT_FILES = ("report.md", "report.html", "results.csv", "summary.csv")
# A server that is down costs a warning after seconds, not MLflow's minutes of retries (each
# can still be set in the environment).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch
PARAM_LENGTH = 6000


def check_uri(uri: str) -> None:
    """A tracking URI MLflow can use: scheme://... with what that scheme needs (ValueError if not)."""
    forms = ("http(s)://HOST[:PORT], sqlite:///PATH, postgresql://..., mysql://..., mssql://..., "
             "file:///PATH or databricks[://PROFILE]")
    parsed = urlparse(uri)
    scheme = "databricks" if uri == "databricks" else parsed.scheme.split("+")[0].lower()
    problem = None
    if scheme not in SCHEMES:
        problem = "no scheme MLflow knows" if parsed.scheme else "no scheme"
    elif scheme in ("http", "https") and not parsed.hostname:
        problem = "no host"
    elif scheme in ("sqlite", "file") and not (parsed.path.strip("/") or parsed.netloc):
        problem = "no path"
    else:
        try:
            parsed.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            problem = "a port that is not a number"
    if problem:
        raise ValueError(f"--tracker-uri {uri!r} is not a tracking URI ({problem}); give {forms}")


def default_uri(run_dir: Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / DATABASE}"


class MLflowTracker(Tracker):
    install_hint = "pip install 'bench-gen[mlflow]'"

    def __init__(self, uri=None, state=None):
        super().__init__(uri, state)
        self._client = None
        self.pending: list = []  # asynchronous logging operations of the trial

    @classmethod
    def check(cls, uri):
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise ValueError(f"needs MLflow, which is not installed: {cls.install_hint}") from None
        if uri:
            check_uri(uri)

    @property
    def client(self):
        if self._client is None:
            for name, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
            from mlflow.tracking import MlflowClient

            logging.getLogger("mlflow").setLevel(logging.WARNING)  # its database set-up's INFO lines
            self._client = MlflowClient(tracking_uri=self.state["tracking_uri"])
        return self._client

    # -- the run ---------------------------------------------------------------------------
    def start_run(self, run: RunInfo) -> None:
        state = self.state
        if not state.get("run_id"):  # a new run: where its store is stays as chosen now
            given = self.uri or os.environ.get(URI_ENV)
            state["in_run_folder"] = not given
            state["tracking_uri"] = given or default_uri(run.directory)
        elif state.get("in_run_folder"):  # the run folder may have moved since
            state["tracking_uri"] = default_uri(run.directory)
        self._client = None
        if not state.get("experiment_id"):
            state["experiment_id"] = self._experiment(run)
        if state.get("run_id"):
            self.client.update_run(state["run_id"], status="RUNNING")
            return
        created = self.client.create_run(state["experiment_id"], run_name=run.run_id, tags={
            "bench.run_id": run.run_id, "bench.run_dir": str(run.directory.resolve()), "bench.kind": "run",
            "dataset": str(run.config.get("dataset")), "backbone": str(run.config.get("backbone")),
            "status": "running"})
        state["run_id"] = created.info.run_id
        self._params(state["run_id"], flat(run.config))

    def _experiment(self, run: RunInfo) -> str:
        name = os.environ.get(EXPERIMENT_ENV, DEFAULT_EXPERIMENT)
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = (run.directory.resolve() / ARTIFACTS).as_uri() if self.state["in_run_folder"] else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # another run created it meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def end_run(self, status: str, report_dir: Path | None) -> None:
        run_id = self.state.get("run_id")
        if not run_id:
            return
        if report_dir is not None:
            for name in REPORT_FILES:
                if (Path(report_dir) / name).is_file():
                    self.client.log_artifact(run_id, str(Path(report_dir) / name), "report")
            if (Path(report_dir) / "plots").is_dir():
                self.client.log_artifacts(run_id, str(Path(report_dir) / "plots"), "report/plots")
        self.client.set_tag(run_id, "status", status)
        self.client.set_terminated(run_id, RUN_STATUS.get(status, "FINISHED"))

    # -- a trial ---------------------------------------------------------------------------
    def start_trial(self, trial: TrialInfo) -> None:
        parent, experiment = self.state.get("run_id"), self.state.get("experiment_id")
        if not parent:
            raise RuntimeError("the run's own MLflow run was not created (see the warning at its start)")
        self.pending = []
        found = self.client.search_runs(
            [experiment], order_by=["attributes.start_time DESC"],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent}' and tags.`bench.trial` = '{trial.trial}'")
        going = [r for r in found if r.info.status in RESUMABLE]
        if going:  # killed or interrupted: continue it after its last training point
            self.run_id = going[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            self.logged = self._last_train_step()
            return
        tags = {"mlflow.parentRunId": parent, "bench.trial": trial.trial, "bench.run_id": trial.run_id,
                "model": trial.model, "family": trial.family, "backbone": str(trial.backbone),
                "seed": str(trial.seed), "status": "running"}
        if trial.sweep_phase:
            tags.update(sweep_phase=trial.sweep_phase, sweep_slot=str(trial.sweep_slot))
        self.run_id = self.client.create_run(experiment, run_name=trial.trial, tags=tags).info.run_id
        self.logged = -1
        self._params(self.run_id, trial.hparams())

    def _last_train_step(self) -> int:
        keys = [k for k in self.client.get_run(self.run_id).data.metrics if k.startswith(TRAIN)]
        return max((m.step for k in keys for m in self.client.get_metric_history(self.run_id, k)), default=-1)

    def log_train(self, step, values):
        if step <= self.logged:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(TRAIN + k, float(v), now, step) for k, v in values.items()]
        self.pending.append(self.client.log_batch(self.run_id, metrics=metrics, synchronous=False))

    def log_eval(self, step, row):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(EVAL + k, v, now, step)
                                                    for k, v in row_metrics(row).items()])

    def log_images(self, step, name, image):
        self.client.log_image(self.run_id, image_array(image),
                              artifact_file=f"{IMAGES}step-{step:08d}/{name}.png")

    def end_trial(self, status, final_row):
        pending, self.pending = self.pending, []
        try:
            for operation in pending:
                if operation is not None:
                    operation.wait()
        finally:
            self.client.set_tag(self.run_id, "status", status)
            self.client.set_terminated(self.run_id, RUN_STATUS.get(status, "FINISHED"))

    def _params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=items[start:start + PARAMS_PER_BATCH])
