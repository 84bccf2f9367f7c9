"""The Ray executor: each (variant, seed) trial is one Ray task.

Data movement: everything travels through Ray, never through a shared path.

- The driver (``bench run``) owns the run folder; workers never read or write it, so they
  need no filesystem in common with it.
- A task trains its trial with the ordinary code (``bench.trial.run_trial``) in a scratch
  run folder on its worker, then returns the trial's metrics rows, its manifest entry and
  the bytes of every file in its trial folder; the driver writes them into the run folder
  (rows appended to ``metrics.jsonl``, files into ``trials/<trial>/``, the entry in
  ``manifest.json``), exactly as the local executor would have.
- While it trains, a thread in the task sends each new checkpoint (with ``log.jsonl``, the
  trackers' files such as TensorBoard's event files, and the rows so far) to a small store
  actor; the driver polls the store and mirrors them into the run folder. A task retried
  after its worker died (``--max-retries``) starts from the store's latest checkpoint;
  ``--resume`` seeds the store from the run folder. So a trial resumes from its last
  checkpoint that reached the store, wherever its worker runs.
- On a worker, the run (plugins, dataset, evaluator) is rebuilt from the run's config:
  installed plugins must be installed there, ``--plugin`` files, ``--data-dir``,
  ``imagefolder:`` paths and ``--fid-weights`` must exist at the same absolute paths.
- ``--tracker``: each worker makes its trackers from the run's config, with what the driver's
  recorded (``tracker_state``). TensorBoard's event files are trial files like the others (in
  the run folder at each checkpoint); MLflow's nested runs attach to the driver's MLflow run
  at its tracking URI, which the workers must reach: the default SQLite database in the run
  folder only from the driver's machine (a local Ray), a tracking server from anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path

import torch

from bench.config import RunConfig, RunError
from bench.device import DeviceError, cached_peaks, device_name, resolve_device
from bench.executors.base import Executor
from bench.executors.ray_options import RayOptions
from bench.store import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    atomic_write,
    read_jsonl,
    record_trial,
    write_status,
)
from bench.store.layout import STATUS_FILE
from bench.store.rows import append_row, read_rows, trial_rows
from bench.store.status import FAILED, INTERRUPTED, RUNNING
from bench.trial import RunContext, TrialSpec, finished_status, record_failure, run_context, run_trial

POLL_SECONDS = 1.0  # driver: how often the store is asked for new checkpoints
MIRROR_SECONDS = 0.1  # worker: how often the trial folder is checked for a new checkpoint
RAY_INSTALL_HINT = "pip install 'bench-gen[ray]' (or pip install ray)"


def _import_ray():
    try:
        import ray
        import ray.exceptions  # noqa: F401  (ray.exceptions.RayTaskError, below)
    except ImportError as exc:
        raise RunError(f"--executor ray needs Ray ({exc}): {RAY_INSTALL_HINT}") from None
    return ray


class RayExecutor(Executor):
    name = "ray"
    options: RayOptions

    def check(self) -> None:
        o = self.options
        if not o.cpus_per_trial > 0:
            raise RunError("--cpus-per-trial must be more than 0")
        if o.gpus_per_trial < 0:
            raise RunError("--gpus-per-trial must be 0 or more")
        if o.max_retries < 0:
            raise RunError("--max-retries must be 0 or more")
        try:
            __import__("ray")
        except ImportError:
            raise RunError(f"--executor ray needs Ray, which is not installed here: {RAY_INSTALL_HINT}"
                           ) from None

    def driver_device(self, spec: str) -> torch.device:
        """The trials train on the workers (which check ``--device`` themselves): a driver
        without CUDA can still schedule a CUDA run, and describes itself as the CPU."""
        try:
            return resolve_device(spec)
        except DeviceError:
            if not str(spec).strip().lower().startswith("cuda"):
                raise
            return torch.device("cpu")

    def trains_on_cuda(self, spec: str) -> bool:
        """Ray hides the GPUs from a task that asks for none."""
        return bool(self.options.gpus_per_trial) and spec.strip().lower() != "cpu"

    def execute(self, ctx: RunContext, trials: list[TrialSpec]) -> dict[str, str]:
        return execute_ray(ctx, trials, self.options)


# ---------------------------------------------------------------------------------------
# The store: an actor that holds each running trial's latest checkpoint and rows.


class TrialStore:
    """Per trial: the files (checkpoint.pt, log.jsonl) and metrics rows to (re)start from."""

    def __init__(self):
        self._trials: dict[str, dict] = {}

    def seed(self, trial: str, files: dict, rows: list) -> None:
        self._trials[trial] = {"version": 0, "files": dict(files), "rows": list(rows),
                               "attempts": 0, "node": None}

    def begin(self, trial: str, node: dict) -> dict:
        """A task (or its retry) starts: what it resumes from."""
        state = self._trials[trial]
        state["attempts"] += 1
        state["node"] = node
        state["version"] += 1
        return {"files": state["files"], "rows": state["rows"], "attempt": state["attempts"]}

    def put(self, trial: str, files: dict, rows: list) -> None:
        state = self._trials[trial]
        state["files"].update(files)
        state["rows"] = list(rows)
        state["version"] += 1

    def updates(self, seen: dict) -> dict:
        return {t: s for t, s in self._trials.items() if s["version"] > seen.get(t, -1)}

    def forget(self, trial: str) -> None:
        self._trials.pop(trial, None)


# ---------------------------------------------------------------------------------------
# The worker side.

_CONTEXTS: dict = {}  # per worker process: config -> RunContext (plugins, dataset, evaluator)
_PEAK_FLOPS: dict = {}  # per worker process: (device name, dtype) -> FLOP/s


def _worker_context(config: RunConfig) -> RunContext:
    """The run rebuilt from its config, once per worker process (Inception and the reference
    features are loaded once, however many trials the worker runs)."""
    key = json.dumps(config.as_dict(), sort_keys=True, default=str)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = run_context(Path("."), config, progress=False)
    return _CONTEXTS[key]


def _peak_flops(config: RunConfig, device: torch.device, driver: dict) -> float:
    """MFU's denominator: the driver's measurement if this is the same device, else measured here."""
    name = device_name(device)
    if name == driver.get("name") and driver.get("peak_flops"):
        return driver["peak_flops"]
    dtype = torch.bfloat16 if config.amp and device.type == "cuda" else torch.float32
    if (name, dtype) not in _PEAK_FLOPS:
        _PEAK_FLOPS[name, dtype] = max(cached_peaks(device, dtype)[0].values())
    return _PEAK_FLOPS[name, dtype]


def _folder_files(directory: Path, skip=()) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.name not in skip}


class _Mirror(threading.Thread):
    """Sends each new checkpoint of a training trial (with its other files and its rows) to the store."""

    def __init__(self, ray, store, trial: str, directory: Path, metrics: Path):
        super().__init__(daemon=True, name=f"bench-mirror-{trial}")
        self.ray, self.store, self.trial = ray, store, trial
        self.directory, self.metrics = directory, metrics
        self.finished = threading.Event()
        self._last = None

    def _key(self):
        def stat(path):
            try:
                s = path.stat()
            except FileNotFoundError:
                return None
            return s.st_mtime_ns, s.st_size, s.st_ino

        return stat(self.directory / CHECKPOINT_FILE), stat(self.metrics)

    def push_if_changed(self) -> None:
        key = self._key()
        if key[0] is None or key == self._last:
            return
        # the checkpoint, log.jsonl and what the trackers write there (TensorBoard's event files)
        files = _folder_files(self.directory, skip=(STATUS_FILE,))
        # wait for it: a worker that dies right after still leaves this checkpoint behind
        self.ray.get(self.store.put.remote(self.trial, files, read_jsonl(self.metrics, growing=True)))
        self._last = key

    def run(self):
        while not self.finished.wait(MIRROR_SECONDS):
            try:
                self.push_if_changed()
            except Exception as exc:  # the trial goes on; a later checkpoint may get through
                print(f"bench: {self.trial}: checkpoint not sent to the driver ({exc})", file=sys.stderr)


def run_trial_task(config_dict: dict, run_name: str, spec_dict: dict, store, driver: dict) -> dict:
    """One trial on a Ray worker, in a scratch run folder; returns what the driver writes."""
    import ray

    config = RunConfig.from_dict(config_dict)
    torch.set_num_threads(max(1, int(config.executor_options.get("cpus_per_trial", 1))))
    spec = TrialSpec(**spec_dict)
    node = {"hostname": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid()}
    start = ray.get(store.begin.remote(spec.name, node))

    shared = _worker_context(config)
    with tempfile.TemporaryDirectory(prefix="bench-trial-") as scratch:
        ctx = dataclasses.replace(shared, directory=Path(scratch) / run_name,
                                  peak_flops=_peak_flops(config, shared.device, driver))
        directory = ctx.trial_dir(spec)
        directory.mkdir(parents=True)
        (ctx.directory / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in start["rows"]))
        for name, data in start["files"].items():
            (directory / name).write_bytes(data)

        mirror = _Mirror(ray, store, spec.name, directory, ctx.directory / METRICS_FILE)
        mirror.start()
        try:
            result = run_trial(ctx, spec)
        finally:
            mirror.finished.set()
            mirror.join()
        return {
            "status": result.status,
            "rows": read_rows(ctx.directory),
            "files": _folder_files(directory),
            "entry": {**result.entry, "node": node["hostname"], "attempts": start["attempt"]},
        }


# ---------------------------------------------------------------------------------------
# The driver side.


def _worker_config(ctx: RunContext) -> dict:
    """The run's config with local paths made absolute (workers start in other folders)."""
    config = ctx.config.as_dict()

    def absolute(value):
        return str(Path(value).expanduser().resolve())

    for key in ("data_dir", "fid_weights"):
        if config.get(key):
            config[key] = absolute(config[key])
    if config["eval_ref"] not in ctx.dataset.splits and Path(config["eval_ref"]).expanduser().exists():
        config["eval_ref"] = absolute(config["eval_ref"])
    name, sep, argument = config["dataset"].partition(":")
    if name == "imagefolder" and argument:
        config["dataset"] = f"{name}:{absolute(argument)}"
    config["plugin_files"] = [absolute(p) for p in config["plugin_files"]]
    return config


def execute_ray(ctx: RunContext, trials: list[TrialSpec], options: RayOptions) -> dict[str, str]:
    """Run every unfinished trial as a Ray task; returns ``{trial: status}``."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=options.ray_address or None, log_to_driver=True)
        except Exception as exc:
            where = options.ray_address or os.environ.get("RAY_ADDRESS") or "a new local Ray"
            raise RunError(f"could not start or reach Ray ({where}): {type(exc).__name__}: {exc}; "
                           f"fix --ray-address, then continue with: bench run --resume {ctx.directory}"
                           ) from None
        started = True
    try:
        return _Driver(ctx, trials, options, ray).execute()
    finally:
        if started:
            ray.shutdown()


class _Driver:
    def __init__(self, ctx: RunContext, trials: list[TrialSpec], options: RayOptions, ray):
        self.ctx, self.trials, self.options, self.ray = ctx, trials, options, ray
        self.written: dict[str, int] = {}  # trial -> its rows already in metrics.jsonl
        self.seen: dict[str, int] = {}  # trial -> last store version mirrored
        self.attempts: dict[str, int] = {}
        self.pending: dict = {}  # object ref -> TrialSpec

    def say(self, message: str) -> None:
        if self.ctx.progress:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    def execute(self) -> dict[str, str]:
        ray, ctx, options = self.ray, self.ctx, self.options
        self._check_resources()
        statuses: dict[str, str] = {}
        rows = read_rows(ctx.directory)
        store = ray.remote(num_cpus=0)(TrialStore).remote()
        self.store = store
        task = ray.remote(run_trial_task).options(
            num_cpus=options.cpus_per_trial, num_gpus=options.gpus_per_trial,
            max_retries=options.max_retries, retry_exceptions=False,
        )
        worker_config = _worker_config(ctx)
        driver = {"name": device_name(ctx.device), "peak_flops": ctx.peak_flops}
        try:
            for spec in self.trials:
                finished = finished_status(ctx, spec, rows)
                if finished:
                    statuses[spec.name] = finished
                    continue
                own_rows = trial_rows(rows, spec.name)
                files = _folder_files(ctx.trial_dir(spec), skip=(STATUS_FILE,))
                ray.get(store.seed.remote(spec.name, files, own_rows))
                self.written[spec.name] = len(own_rows)
                ref = task.remote(worker_config, ctx.directory.name, spec.as_dict(), store, driver)
                self.pending[ref] = spec
            self.say(f"{len(self.pending)} trial(s) submitted to Ray "
                     f"({options.cpus_per_trial:g} CPU, {options.gpus_per_trial:g} GPU each)")
            total, done = len(self.pending), 0
            while self.pending:
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=POLL_SECONDS)
                self._sync()
                for ref in ready:
                    spec = self.pending.pop(ref)
                    statuses[spec.name] = status = self._collect(ref, spec)
                    done += 1
                    self.say(f"{spec.name}: {status} ({done}/{total})")
        except KeyboardInterrupt:
            self._interrupt()
            raise
        finally:
            try:
                ray.kill(store)
            except Exception:
                pass
        return {spec.name: statuses[spec.name] for spec in self.trials if spec.name in statuses}

    def _check_resources(self) -> None:
        options = self.options
        try:
            available = self.ray.cluster_resources()
        except Exception:
            return
        for kind, wanted in (("CPU", options.cpus_per_trial), ("GPU", options.gpus_per_trial)):
            if wanted and available.get(kind, 0) < wanted:
                print(f"warning: each trial asks for {wanted:g} {kind} but the Ray cluster has "
                      f"{available.get(kind, 0):g}; trials wait until it has them "
                      f"(see --{kind.lower()}s-per-trial)", file=sys.stderr)

    def _append_rows(self, trial: str, rows: list) -> None:
        for row in rows[self.written[trial]:]:
            append_row(self.ctx.directory, row)
        self.written[trial] = max(self.written[trial], len(rows))

    def _sync(self) -> None:
        """Mirror the checkpoints, logs and rows that running trials sent to the store."""
        pending = {spec.name: spec for spec in self.pending.values()}
        updates = self.ray.get(self.store.updates.remote(self.seen))
        for trial, state in updates.items():
            self.seen[trial] = state["version"]
            if trial not in pending or not state["attempts"]:  # finished, or not started yet
                continue
            directory = self.ctx.trial_dir(pending[trial])
            directory.mkdir(parents=True, exist_ok=True)
            if state["attempts"] > self.attempts.get(trial, 0):
                self.attempts[trial] = state["attempts"]
                write_status(directory, RUNNING)
                if state["attempts"] > 1:
                    self.say(f"{trial}: worker lost; retry {state['attempts'] - 1} on "
                             f"{state['node']['hostname']} from its last checkpoint")
            for name, data in state["files"].items():
                atomic_write(directory / name, data)
            self._append_rows(trial, state["rows"])

    def _collect(self, ref, spec: TrialSpec) -> str:
        try:
            payload = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            message = (f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException)
                       else str(exc).strip().splitlines()[-1])
            return self._record_failure(spec, message, str(exc))
        except self.ray.exceptions.RayError as exc:
            message = (f"{type(exc).__name__}: the trial's worker was lost "
                       f"(retried {self.options.max_retries} time(s))")
            return self._record_failure(spec, message, str(exc))
        finally:
            self.store.forget.remote(spec.name)
        directory = self.ctx.trial_dir(spec)
        directory.mkdir(parents=True, exist_ok=True)
        files = payload["files"]
        for name, data in files.items():
            if name != "status.json":
                atomic_write(directory / name, data)
        self._append_rows(spec.name, payload["rows"])
        if "status.json" in files:
            atomic_write(directory / "status.json", files["status.json"])
        record_trial(self.ctx.directory, spec.name, payload["entry"])
        return payload["status"]

    def _record_failure(self, spec: TrialSpec, message: str, details: str) -> str:
        """A trial whose task raised or whose worker could not be replaced: ``failed``."""
        result = record_failure(self.ctx, spec, message, details)
        record_trial(self.ctx.directory, spec.name, result.entry)
        return FAILED

    def _interrupt(self) -> None:
        """Ctrl-C: cancel what is outstanding, keep what reached the store, mark it resumable."""
        for ref in self.pending:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:
                pass
        try:
            self._sync()
        except BaseException:
            pass
        for spec in self.pending.values():
            directory = self.ctx.trial_dir(spec)
            if directory.is_dir():
                write_status(directory, INTERRUPTED, "interrupted; resume with --resume")
