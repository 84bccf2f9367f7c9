"""The Ray executor: each (variant, seed) trial is one Ray task.

Data movement: everything travels through Ray, never through a shared path.

- The driver (``bench run``) owns the run folder; workers never read or write it, so they
  need no filesystem in common with it.
- A task trains its trial with the ordinary local code (``bench.runner.run_trial``) in a
  scratch copy of the run folder on its worker, then returns the trial's metrics rows and
  the bytes of every file in its trial folder; the driver writes them into the run folder
  (rows appended to ``metrics.jsonl``, files into ``trials/<model>-s<seed>/``, the trial's
  entry in ``manifest.json``), exactly as the local executor would have.
- While it trains, a thread in the task sends each new checkpoint (with ``log.jsonl`` and
  the rows so far) to a small store actor; the driver polls the store and mirrors them into
  the run folder. A task retried after its worker died (``--max-retries``) starts from the
  store's latest checkpoint; ``--resume`` seeds the store from the run folder. So a trial
  resumes from its last checkpoint that reached the store, wherever its worker runs.
- On a worker, the run (plugins, dataset, evaluator) is rebuilt from the run's config:
  installed plugins must be installed there, ``--plugin`` files, ``--data-dir``,
  ``imagefolder:`` paths and ``--fid-weights`` must exist at the same absolute paths.
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

from bench.results import _atomic_write, append_jsonl, read_json, read_jsonl, trial_dir, write_json

POLL_SECONDS = 1.0  # driver: how often the store is asked for new checkpoints
MIRROR_SECONDS = 0.1  # worker: how often the trial folder is checked for a new checkpoint
CHECKPOINT = "checkpoint.pt"


def _import_ray():
    try:
        import ray
        import ray.exceptions  # noqa: F401  (ray.exceptions.RayTaskError, below)
    except ImportError as exc:  # check_executor says this before the run starts
        from bench.executors import RAY_INSTALL_HINT
        from bench.runner import RunError

        raise RunError(f"--executor ray needs Ray ({exc}): {RAY_INSTALL_HINT}") from None
    return ray


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

_PREPARED: dict = {}  # per worker process: config -> (plugins, dataset, device, evaluator)
_PEAK_FLOPS: dict = {}  # per worker process: (device name, dtype) -> FLOP/s


def _prepared(config):
    from bench.evaluation import Evaluator
    from bench.runner import prepare_run

    key = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
    if key not in _PREPARED:
        plugins, dataset, device = prepare_run(config, progress=False)
        _PREPARED[key] = (plugins, dataset, device, Evaluator(config.eval_settings(), dataset, device))
    return _PREPARED[key]


def _peak_flops(config, device, driver: dict) -> float:
    """MFU's denominator: the driver's measurement if this is the same device, else measured here."""
    import torch

    from bench.device import device_name, measure_peak_flops

    name = device_name(device)
    if name == driver.get("name") and driver.get("peak_flops"):
        return driver["peak_flops"]
    dtype = torch.bfloat16 if config.amp and device.type == "cuda" else torch.float32
    if (name, dtype) not in _PEAK_FLOPS:
        _PEAK_FLOPS[name, dtype] = measure_peak_flops(device, dtype)
    return _PEAK_FLOPS[name, dtype]


def _complete_rows(path: Path) -> list[dict]:
    """The complete lines of a JSON-lines file that may be being appended to."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _folder_files(directory: Path, skip=()) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.name not in skip}


class _Mirror(threading.Thread):
    """Sends each new checkpoint of a training trial (and its log and rows) to the store."""

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

        return stat(self.directory / CHECKPOINT), stat(self.metrics)

    def push_if_changed(self) -> None:
        key = self._key()
        if key[0] is None or key == self._last:
            return
        files = {CHECKPOINT: (self.directory / CHECKPOINT).read_bytes()}
        if (self.directory / "log.jsonl").exists():
            files["log.jsonl"] = (self.directory / "log.jsonl").read_bytes()
        # wait for it: a worker that dies right after still leaves this checkpoint behind
        self.ray.get(self.store.put.remote(self.trial, files, _complete_rows(self.metrics)))
        self._last = key

    def run(self):
        while not self.finished.wait(MIRROR_SECONDS):
            try:
                self.push_if_changed()
            except Exception as exc:  # the trial goes on; a later checkpoint may get through
                print(f"bench: {self.trial}: checkpoint not sent to the driver ({exc})", file=sys.stderr)


def run_trial_task(config_dict: dict, run_name: str, model: str, seed: int, store, driver: dict) -> dict:
    """One trial on a Ray worker, in a scratch run folder; returns what the driver writes."""
    import ray
    import torch

    from bench.device import device_name
    from bench.runner import Run, RunConfig, run_trial

    config = RunConfig(**config_dict)
    config.executor = "local"  # this process trains the trial itself
    torch.set_num_threads(max(1, int(config.cpus_per_trial)))
    trial = f"{model}-s{seed}"
    node = {"hostname": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid()}
    start = ray.get(store.begin.remote(trial, node))

    plugins, dataset, device, evaluator = _prepared(config)
    with tempfile.TemporaryDirectory(prefix="bench-trial-") as scratch:
        run = Run(Path(scratch) / run_name, config, plugins, dataset, device, progress=False,
                  peak_flops=_peak_flops(config, device, driver))
        run.evaluator = evaluator  # Inception and reference features, loaded once per worker
        directory = trial_dir(run.directory, model, seed)
        directory.mkdir(parents=True)
        write_json(run.manifest_path, {"trials": {}})
        run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in start["rows"]))
        for name, data in start["files"].items():
            (directory / name).write_bytes(data)

        mirror = _Mirror(ray, store, trial, directory, run.metrics_path)
        mirror.start()
        try:
            status = run_trial(run, model, seed)
        finally:
            mirror.finished.set()
            mirror.join()
        entry = read_json(run.manifest_path)["trials"].get(trial)
        if entry is not None:
            entry.update(node=node["hostname"], attempts=start["attempt"])
        return {
            "status": status,
            "rows": read_jsonl(run.metrics_path),
            "files": _folder_files(directory),
            "trial": entry,
            "device": device_name(device),
        }


# ---------------------------------------------------------------------------------------
# The driver side.


def _worker_config(run) -> dict:
    """The run's config with local paths made absolute (workers start in other folders)."""
    config = dataclasses.asdict(run.config)

    def absolute(value):
        return str(Path(value).expanduser().resolve())

    for key in ("data_dir", "fid_weights"):
        if config.get(key):
            config[key] = absolute(config[key])
    if config["eval_ref"] not in run.dataset.splits and Path(config["eval_ref"]).expanduser().exists():
        config["eval_ref"] = absolute(config["eval_ref"])
    name, sep, argument = config["dataset"].partition(":")
    if name == "imagefolder" and argument:
        config["dataset"] = f"{name}:{absolute(argument)}"
    config["plugin_files"] = [absolute(p) for p in config["plugin_files"]]
    return config


def _write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


def execute_ray(run) -> dict[str, str]:
    """Run every unfinished trial as a Ray task; returns ``{trial: status}``."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=run.config.ray_address or None, log_to_driver=True)
        except Exception as exc:
            from bench.runner import RunError

            where = run.config.ray_address or os.environ.get("RAY_ADDRESS") or "a new local Ray"
            raise RunError(f"could not start or reach Ray ({where}): {type(exc).__name__}: {exc}; "
                           f"fix --ray-address, then continue with: bench run --resume {run.directory}"
                           ) from None
        started = True
    try:
        return _Driver(run, ray).execute()
    finally:
        if started:
            ray.shutdown()


class _Driver:
    def __init__(self, run, ray):
        self.run, self.ray = run, ray
        self.written: dict[str, int] = {}  # trial -> its rows already in metrics.jsonl
        self.seen: dict[str, int] = {}  # trial -> last store version mirrored
        self.attempts: dict[str, int] = {}
        self.pending: dict = {}  # object ref -> (model, seed)

    def say(self, message: str) -> None:
        if self.run.progress:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    def execute(self) -> dict[str, str]:
        from bench.device import device_name

        ray, run, config = self.ray, self.run, self.run.config
        self._check_resources()
        statuses: dict[str, str] = {}
        rows = read_jsonl(run.metrics_path)
        store = ray.remote(num_cpus=0)(TrialStore).remote()
        self.store = store
        task = ray.remote(run_trial_task).options(
            num_cpus=config.cpus_per_trial, num_gpus=config.gpus_per_trial,
            max_retries=config.max_retries, retry_exceptions=False,
        )
        worker_config = _worker_config(run)
        driver = {"name": device_name(run.device), "peak_flops": run.peak_flops}
        try:
            for model in config.models:
                for seed in config.seeds:
                    trial = f"{model}-s{seed}"
                    finished = self._finished(model, seed)
                    if finished:
                        statuses[trial] = finished
                        continue
                    trial_rows = [r for r in rows if r.get("model") == model and r.get("seed") == seed]
                    files = _folder_files(trial_dir(run.directory, model, seed), skip=("status.json",))
                    ray.get(store.seed.remote(trial, files, trial_rows))
                    self.written[trial] = len(trial_rows)
                    ref = task.remote(worker_config, run.directory.name, model, seed, store, driver)
                    self.pending[ref] = (model, seed)
            self.say(f"{len(self.pending)} trial(s) submitted to Ray "
                     f"({config.cpus_per_trial:g} CPU, {config.gpus_per_trial:g} GPU each)")
            total, done = len(self.pending), 0
            while self.pending:
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=POLL_SECONDS)
                self._sync()
                for ref in ready:
                    model, seed = self.pending.pop(ref)
                    statuses[f"{model}-s{seed}"] = status = self._collect(ref, model, seed)
                    done += 1
                    self.say(f"{model}-s{seed}: {status} ({done}/{total})")
        except KeyboardInterrupt:
            self._interrupt()
            raise
        finally:
            try:
                ray.kill(store)
            except Exception:
                pass
        return {f"{m}-s{s}": statuses[f"{m}-s{s}"] for m in config.models for s in config.seeds
                if f"{m}-s{s}" in statuses}

    def _check_resources(self) -> None:
        config = self.run.config
        try:
            available = self.ray.cluster_resources()
        except Exception:
            return
        for kind, wanted in (("CPU", config.cpus_per_trial), ("GPU", config.gpus_per_trial)):
            if wanted and available.get(kind, 0) < wanted:
                print(f"warning: each trial asks for {wanted:g} {kind} but the Ray cluster has "
                      f"{available.get(kind, 0):g}; trials wait until it has them "
                      f"(see --{kind.lower()}s-per-trial)", file=sys.stderr)

    def _finished(self, model: str, seed: int) -> str | None:
        """As ``run_trial``: a finished trial is kept; one killed after its row is completed."""
        from bench.runner import FINISHED, _row_exists

        status_path = trial_dir(self.run.directory, model, seed) / "status.json"
        if status_path.exists():
            status = read_json(status_path)["status"]
            if status in FINISHED:
                return status
        if _row_exists(self.run, model, seed, "final"):
            write_json(status_path, {"status": "completed", "message": ""})
            return "completed"
        return None

    def _append_rows(self, trial: str, rows: list) -> None:
        for row in rows[self.written[trial]:]:
            append_jsonl(self.run.metrics_path, row)
        self.written[trial] = max(self.written[trial], len(rows))

    def _sync(self) -> None:
        """Mirror the checkpoints, logs and rows that running trials sent to the store."""
        pending = {f"{m}-s{s}": (m, s) for m, s in self.pending.values()}
        updates = self.ray.get(self.store.updates.remote(self.seen))
        for trial, state in updates.items():
            self.seen[trial] = state["version"]
            if trial not in pending or not state["attempts"]:  # finished, or not started yet
                continue
            directory = trial_dir(self.run.directory, *pending[trial])
            directory.mkdir(parents=True, exist_ok=True)
            if state["attempts"] > self.attempts.get(trial, 0):
                self.attempts[trial] = state["attempts"]
                write_json(directory / "status.json", {"status": "running", "message": ""})
                if state["attempts"] > 1:
                    self.say(f"{trial}: worker lost; retry {state['attempts'] - 1} on "
                             f"{state['node']['hostname']} from its last checkpoint")
            for name, data in state["files"].items():
                _write_bytes(directory / name, data)
            self._append_rows(trial, state["rows"])

    def _collect(self, ref, model: str, seed: int) -> str:
        trial = f"{model}-s{seed}"
        try:
            payload = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            message = (f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException)
                       else str(exc).strip().splitlines()[-1])
            return self._record_failure(model, seed, message, str(exc))
        except self.ray.exceptions.RayError as exc:
            message = (f"{type(exc).__name__}: the trial's worker was lost "
                       f"(retried {self.run.config.max_retries} time(s))")
            return self._record_failure(model, seed, message, str(exc))
        finally:
            self.store.forget.remote(trial)
        directory = trial_dir(self.run.directory, model, seed)
        directory.mkdir(parents=True, exist_ok=True)
        files = payload["files"]
        for name, data in files.items():
            if name != "status.json":
                _write_bytes(directory / name, data)
        self._append_rows(trial, payload["rows"])
        if "status.json" in files:
            _write_bytes(directory / "status.json", files["status.json"])
        if payload["trial"] is not None:
            manifest = read_json(self.run.manifest_path)
            manifest["trials"][trial] = payload["trial"]
            write_json(self.run.manifest_path, manifest)
        return payload["status"]

    def _record_failure(self, model: str, seed: int, message: str, details: str) -> str:
        """A trial whose task raised or whose worker could not be replaced: ``failed``."""
        from bench.results import load_torch
        from bench.runner import TrialOutcome, _final_row, _record_trial
        from bench.trainer import Usage

        directory = trial_dir(self.run.directory, model, seed)
        directory.mkdir(parents=True, exist_ok=True)
        outcome = TrialOutcome(status="failed", message=message)
        if (directory / CHECKPOINT).exists():  # how far it got, from its last checkpoint
            try:
                outcome.usage = Usage(**load_torch(directory / CHECKPOINT)["usage"])
            except Exception:
                pass
        (directory / "error.txt").write_text(details)
        print(f"bench: trial {model} seed {seed} failed: {message}", file=sys.stderr)
        append_jsonl(self.run.metrics_path, _final_row(self.run, model, seed, outcome, directory))
        write_json(directory / "status.json", {"status": "failed", "message": message})
        _record_trial(self.run, f"{model}-s{seed}", outcome)
        return "failed"

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
        for model, seed in self.pending.values():
            directory = trial_dir(self.run.directory, model, seed)
            if directory.is_dir():
                write_json(directory / "status.json",
                           {"status": "interrupted", "message": "interrupted; resume with --resume"})
