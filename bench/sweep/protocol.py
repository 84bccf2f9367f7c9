"""A sweep's protocol: its own options, each with its flag (``bench.options``).

Torch- and Optuna-free, so that ``bench sweep --help`` makes its options from here.
"""

from __future__ import annotations

import dataclasses

from bench.options import option
from bench.space import parse_override
from bench.store.sweep import SAMPLERS


def _overrides(items) -> dict:
    """``gan.lr=loguniform(1e-4,1e-3)`` -> ``{"gan": {"lr": "loguniform(1e-4,1e-3)"}}``."""
    out: dict = {}
    for item in items:
        model, field, text = parse_override(item)
        out.setdefault(model, {})[field] = text
    return out


@dataclasses.dataclass
class SweepProtocol:
    samples: int = option(20, min=1,  # K
                          help="Search: hyperparameter settings drawn per variant (K), each trained once.")
    final_seeds: int = option(3, min=1,  # S
                              help="Final: seeds each variant's best setting is retrained with (S).")
    seed: int = option(0, flag="--sweep-seed",  # the settings drawn are a function of it
                       help="Seed of the draws: the same command draws the same settings.")
    sampler: str = option("random", choices=SAMPLERS,
                          help="random: the protocol (Lucic et al. 2018); tpe: Optuna's TPE, which draws "
                               "from the results so far.")
    overrides: dict = option(flag="--space-override", multiple=True, parse=_overrides,
                             metavar="MODEL.FIELD=DIST",  # model -> {field: distribution text}
                             help="Replace or add a field's distribution, e.g. gan.lr=loguniform(1e-4,1e-3); "
                                  "=default keeps the field at its default (repeatable).")
    objective: str = option("fid", metavar="COLUMN",
                            help="The column that picks each variant's best setting, in its declared "
                                 "direction: fid, or any column a selected metric writes, e.g. "
                                 "fd_dinov2_s14 (with --extractors) or inception_score_mean.")
