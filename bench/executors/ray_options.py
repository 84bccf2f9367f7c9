"""The Ray executor's options (torch-free, so the command line can show their defaults)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class RayOptions:
    """``--ray-address``, ``--cpus-per-trial``, ``--gpus-per-trial``, ``--max-retries``."""

    ray_address: str | None = None  # None: RAY_ADDRESS or a new local Ray; "auto"; "ray://HOST:PORT"
    cpus_per_trial: float = 1  # Ray resources of each trial's task (and its torch threads)
    gpus_per_trial: float = 0
    max_retries: int = 2  # Ray retries of a trial whose worker died
