"""Device selection and synchronised timing."""

from __future__ import annotations

import time

import torch


class DeviceError(ValueError):
    pass


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; ``cuda[:N]`` must exist."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise DeviceError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {spec}: CUDA is not available on this machine; use --device cpu")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def machine_description() -> str:
    """The host in one line: CPU model, logical CPUs, memory, OS, and GPUs if any.

    Recorded in each run's manifest so a report says what its timings were measured on.
    """
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:  # Linux: the marketing name, which platform.processor() does not give
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    parts = [f"{cpu}, {os.cpu_count()} logical CPUs"]
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        parts.append(f"{memory / 2**30:.0f} GiB RAM")
    except (ValueError, OSError, AttributeError):
        pass
    parts.append(f"{platform.system()} {platform.release()}")
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        parts.append("GPUs: " + ", ".join(names))
    else:
        parts.append("no GPU")
    return "; ".join(parts)


class TrainClock:
    """Training wall-clock time, synchronised with the device, that can be paused.

    Evaluation and checkpoint writing run while it is paused, so they never
    count against a time budget.
    """

    def __init__(self, device: torch.device, already: float = 0.0):
        self.device = device
        self._total = already
        self._started: float | None = None

    def start(self) -> None:
        synchronize(self.device)
        self._started = time.perf_counter()

    def pause(self) -> float:
        synchronize(self.device)
        if self._started is not None:
            self._total += time.perf_counter() - self._started
            self._started = None
        return self._total

    @property
    def elapsed(self) -> float:
        """Seconds so far; between synchronisations this is host time (the GPU may lag)."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self._total + running


def _best_rate(fn, flop: float, repeats: int, rounds: int, device: torch.device) -> float:
    fn()  # warm-up: library initialisation, kernel choice, clocks
    best = 0.0
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        synchronize(device)
        best = max(best, flop * repeats / (time.perf_counter() - start))
    return best


def measure_peaks(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 5,
                  rounds: int = 3) -> dict[str, float]:
    """FLOP/s of two large matrix products on ``device``, each the best of a few rounds.

    ``matmul``: ``a @ b`` (the BLAS: MKL on x86 CPUs, cuBLAS on CUDA). ``conv1x1``: the same
    kind of product as a 1x1 convolution over NHWC (channels_last) activations, which runs on
    the convolution library (oneDNN / cuDNN) that the train steps use. They can differ a lot:
    on AMD CPUs MKL's GEMM takes its AVX2 path while oneDNN uses AVX-512, so convolutions run
    at up to twice the ``matmul`` figure, and an MFU against ``matmul`` alone would pass 100%.
    """
    cuda = device.type == "cuda"
    size = 8192 if cuda else 2048
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    peaks = {"matmul": _best_rate(lambda: a @ b, 2 * size**3, repeats, rounds, device)}
    # [N*H*W, C] x [C, K] as a convolution: N*H*W = 4096 (CPU) or 65536 rows, C = K = 1024 (4096).
    n, c = (1024, 4096) if cuda else (64, 1024)
    x = torch.randn(n, c, 8, 8, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, c, 1, 1, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    peaks["conv1x1"] = _best_rate(lambda: torch.nn.functional.conv2d(x, w), 2 * n * 64 * c * c,
                                  repeats, rounds, device)
    return peaks


PEAKS_FILE = "peaks.json"


def peak_cache_key(device: torch.device, dtype: torch.dtype) -> str:
    """What a measured peak depends on: the processor, how many cores torch uses, torch, dtype."""
    import os

    dtype_name = str(dtype).removeprefix("torch.")
    return (f"{device_name(device)} | {machine_description().split(';')[0]} | {os.cpu_count()} CPUs | "
            f"{torch.get_num_threads()} threads | torch {torch.__version__} | {dtype_name}")


# Below this share of its threads' CPU time, a measurement ran on a busy machine (CPU only): an idle
# 2-core machine gives about 0.9-1.0, one competing single-threaded process about 0.67.
BUSY_BELOW = 0.7
BUSY_ADVICE = "MFU reads high; re-measure on an idle machine with --remeasure-peak"


def cpu_share(measure, device: torch.device, dtype: torch.dtype) -> tuple[dict[str, float], float]:
    """``measure(device, dtype)`` and the share of its threads' CPU time the process got while it
    ran (1.0 on a GPU, which other processes' CPU load does not slow): a busy machine gives the
    measurement fewer cores than torch asked for, and a lower peak."""
    if device.type != "cpu":
        return measure(device, dtype), 1.0
    wall, cpu = time.perf_counter(), time.process_time()
    values = measure(device, dtype)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if wall < 0.05:  # too short to judge (the real measurement takes seconds)
        return values, 1.0
    return values, min(1.0, cpu / (wall * torch.get_num_threads()))


def cached_measurement(name: str, device: torch.device, dtype: torch.dtype, measure, *,
                       remeasure: bool = False, keep_best: bool = False) -> tuple[dict[str, float], str]:
    """``measure(device, dtype) -> {name: value}``, measured once per machine and device and kept
    in ``$BENCH_CACHE_DIR/peaks.json`` under ``name`` and ``peak_cache_key``; ``remeasure``
    measures again. Returns the values and where they came from (``measured now`` or
    ``cache, measured <date>``, with a warning when it ran on a busy machine). A damaged cache is
    measured again, never trusted. With ``keep_best`` (a peak, which is the hardware's: a lower
    figure means the machine was busy) each value is the best ever measured under the key, and an
    entry measured on a busy machine (``cpu_share``) is measured again at its next use."""
    import datetime

    from bench.store import StoreError, read_json, write_json
    from bench.store.layout import default_cache_dir

    path = default_cache_dir() / PEAKS_FILE
    key = f"{name} | {peak_cache_key(device, dtype)}" if name else peak_cache_key(device, dtype)
    try:
        cache = read_json(path, "peak cache") if path.is_file() else {}
    except StoreError:
        cache = {}
    cache = cache if isinstance(cache, dict) else {}
    entry = cache.get(key)
    valid = isinstance(entry, dict) and isinstance(entry.get("values"), dict)
    if not remeasure and valid and (not keep_best or entry.get("cpu_share", 1.0) >= BUSY_BELOW):
        return {k: float(v) for k, v in entry["values"].items()}, f"cache, measured {entry.get('measured')}"
    values, share = cpu_share(measure, device, dtype)
    measured = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    earlier_higher = False
    if keep_best and valid and set(entry["values"]) == set(values):
        best = {k: max(float(v), float(entry["values"][k])) for k, v in values.items()}
        earlier_higher = best != values
        if earlier_higher:  # an earlier measurement was higher: it stands
            values, share, measured = best, entry.get("cpu_share", 1.0), entry.get("measured", measured)
    cache[key] = {"values": values, "measured": measured, "cpu_share": round(share, 3)}
    try:
        write_json(path, cache)
    except OSError:
        pass  # a read-only cache: measured again next time, nothing lost
    source = f"cache, measured {measured} (higher than now)" if earlier_higher else "measured now"
    if keep_best and share < BUSY_BELOW:
        source += (f" on a busy machine (the measurement got {share:.0%} of its "
                   f"{torch.get_num_threads()} threads' CPU time): {BUSY_ADVICE}")
    return values, source


def cached_peaks(device: torch.device, dtype: torch.dtype = torch.float32, *, remeasure: bool = False,
                 measure=None) -> tuple[dict[str, float], str]:
    """The device's matrix-product peaks (``measure_peaks``), measured once per machine and
    device (``cached_measurement``, keeping the best figure ever measured); ``measure`` replaces
    ``measure_peaks`` (tests)."""
    return cached_measurement("", device, dtype, measure or measure_peaks, remeasure=remeasure,
                              keep_best=True)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA: max allocated since the last reset. CPU: the process's peak RSS (never resets)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB
