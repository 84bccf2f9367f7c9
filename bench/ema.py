"""Exponential moving averages of a variant's image networks (``--ema DECAY``).

After every training step each network named in ``variant.image_networks`` (its generator or
decoder, and the encoder ``reconstruct`` uses) is folded into an average,

    avg <- decay * avg + (1 - decay) * live          (parameters)
    avg <- live                                      (buffers: batch-norm statistics, copied)

as StudioGAN and stylegan2-ada keep their evaluation generators (Karras et al. 2018, Yazici et
al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"). The averaging is
``torch.optim.swa_utils.AveragedModel`` with its EMA update; the first update copies the
live weights. Every evaluation runs inside ``applied``, which puts the averaged weights into
the live networks and restores the trained ones after, so variants need no EMA code of their
own. The averages are part of every checkpoint: a resumed trial continues the same averages.
"""

from __future__ import annotations

import contextlib

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMAError(ValueError):
    """A variant or decay that EMA cannot work with; the message says what to change."""


def check_decay(decay: float) -> None:
    if not 0.0 < decay < 1.0:
        raise EMAError(f"--ema {decay}: the decay must be between 0 and 1 (e.g. 0.999), or leave --ema out")


def check_variant(variant_cls, model: str) -> None:
    if not getattr(variant_cls, "image_networks", ()):
        raise EMAError(f"--ema: model {model!r} declares no image_networks (the networks its images come "
                       "from), so there is nothing to average; run it without --ema, or declare them in "
                       "its class")


class GeneratorEMA:
    """Averaged copies of ``variant.image_networks``, updated after each step."""

    def __init__(self, variant, decay: float):
        check_decay(decay)
        check_variant(type(variant), type(variant).__name__)
        missing = [n for n in variant.image_networks if n not in variant.networks]
        if missing:
            raise EMAError(f"{type(variant).__name__}.image_networks names {', '.join(missing)}, which "
                           f"build() did not create (it has {', '.join(variant.networks)})")
        self.decay = decay
        self.averages = {
            name: AveragedModel(variant.networks[name], multi_avg_fn=get_ema_multi_avg_fn(decay),
                                use_buffers=False)
            for name in variant.image_networks
        }

    @torch.no_grad()
    def update(self, variant) -> None:
        for name, average in self.averages.items():
            live = variant.networks[name]
            average.update_parameters(live)
            for kept, current in zip(average.module.buffers(), live.buffers(), strict=True):
                kept.copy_(current)

    @contextlib.contextmanager
    def applied(self, variant):
        """The averaged weights in the variant's live networks for the duration; the trained
        weights (which the optimizers hold) are put back bit for bit afterwards."""
        trained = {}
        with torch.no_grad():
            for name, average in self.averages.items():
                net = variant.networks[name]
                trained[name] = {k: v.detach().clone() for k, v in net.state_dict().items()}
                net.load_state_dict(average.module.state_dict())
        try:
            yield variant
        finally:
            with torch.no_grad():
                for name, state in trained.items():
                    variant.networks[name].load_state_dict(state)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "averages": {k: v.state_dict() for k, v in self.averages.items()}}

    def load_state_dict(self, state: dict) -> None:
        for name, average in self.averages.items():
            average.load_state_dict(state["averages"][name])


def applied(ema: GeneratorEMA | None, variant):
    """``ema.applied(variant)``, or nothing when EMA is off."""
    return ema.applied(variant) if ema is not None else contextlib.nullcontext(variant)
