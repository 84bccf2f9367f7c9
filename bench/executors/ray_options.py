"""The Ray executor's options, each with its flag (torch-free: the command line makes
``--ray-address``, ``--cpus-per-trial``, ``--gpus-per-trial`` and ``--max-retries`` from them)."""

from __future__ import annotations

import dataclasses

from bench.options import option


@dataclasses.dataclass
class RayOptions:
    """What a run with ``--executor ray`` asks of Ray; saved in ``RunConfig.executor_options``."""

    ray_address: str | None = option(None, help="Ray cluster: auto (a running `ray start`), ray://HOST:PORT "
                                                 "(Ray Client); default: RAY_ADDRESS or a new local Ray.")
    cpus_per_trial: float = option(1, min=0, min_open=True,
                                   help="CPUs each trial's Ray task asks for, and its torch threads "
                                        "(default {default:g}).")
    gpus_per_trial: float = option(0, min=0, help="GPUs each trial's Ray task asks for (default {default:g}; "
                                                  "Ray hides GPUs from tasks that ask for none).")
    max_retries: int = option(2, min=0, help="Ray retries of a trial whose worker died, from its last "
                                             "checkpoint (default {default}).")
