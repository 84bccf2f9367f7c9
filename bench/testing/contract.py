"""The checks every variant passes: one step, sampling, a checkpoint round trip, exact resume
through the trainer, EMA. Each raises ``AssertionError`` saying what the variant did wrong.

A variant is checked as the trainer drives it: float32 batches in [-1, 1] of shape
``[B, 3, H, W]`` from bench's synthetic images, on the CPU, one torch thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import tempfile
from pathlib import Path

import torch

from bench.variant import FAMILIES, Variant
from bench.variant_config import with_defaults

RESOLUTION = 32
# Config fields that, where a variant's Config has them, are set small so that the checks take
# about a second: the shared backbone's width and latent size, and a latent discriminator's width.
SMALL = {"width": 8, "latent": 8, "hidden": 32}


def small_config(cls: type[Variant], backbone: str | None = None, **overrides):
    """``cls.Config`` with ``SMALL``'s fields where it has them, then ``overrides``, on ``backbone``
    (None: the Config's own) with that backbone's defaults (``Variant.backbone_defaults``), as a run
    makes it."""
    names = {f.name for f in dataclasses.fields(cls.Config)}
    values = {**{k: v for k, v in SMALL.items() if k in names}, **overrides}
    if backbone is not None:
        values["backbone"] = backbone
    return cls.Config(**with_defaults(cls, values))  # unchecked: build() checks its own


def make_variant(cls: type[Variant], seed: int = 0, resolution: int = RESOLUTION, backbone: str | None = None,
                 **overrides) -> Variant:
    return cls((3, resolution, resolution), small_config(cls, backbone, **overrides), "cpu", seed)


def synthetic_batch(n: int, seed: int = 0, resolution: int = RESOLUTION) -> torch.Tensor:
    """``n`` of bench's synthetic images as the trainer feeds them: float32 in [-1, 1]."""
    from bench.data.synthetic import synthetic_images

    return synthetic_images(n, resolution, seed).float() / 127.5 - 1


@contextlib.contextmanager
def one_thread():
    """The checks' networks are tiny: one thread is as fast, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _name(cls) -> str:
    return cls.__name__


def check_class(cls: type[Variant], backbone: str | None = None) -> None:
    """What registration needs: a family, a Config whose every field has a default, the abstract
    methods implemented, image networks that ``build`` creates."""
    assert isinstance(cls, type) and issubclass(cls, Variant), f"{cls!r} is not a bench.Variant subclass"
    assert cls.family in FAMILIES, f"{_name(cls)}.family is {cls.family!r}; use one of {FAMILIES}"
    assert dataclasses.is_dataclass(cls.Config), f"{_name(cls)}.Config is not a dataclass"
    cls.Config()  # every field has a default (a TypeError names the one without)
    assert not getattr(cls, "__abstractmethods__", None), (
        f"{_name(cls)} leaves {sorted(cls.__abstractmethods__)} unimplemented")
    variant = make_variant(cls, backbone=backbone)
    missing = [n for n in cls.image_networks if n not in variant.networks]
    assert not missing, f"{_name(cls)}.image_networks names {missing}, which build() did not create"


def check_one_step(cls: type[Variant], backbone: str | None = None) -> None:
    """``train_step`` returns detached finite 0-d float losses and trains every network."""
    variant, batch = make_variant(cls, backbone=backbone), synthetic_batch(8)
    before = {n: [p.detach().clone() for p in net.parameters()] for n, net in variant.networks.items()}
    losses = variant.train_step(batch)
    assert losses, f"{_name(cls)}.train_step returned no losses"
    for key, value in losses.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, f"loss {key!r} is not a 0-d tensor"
        assert value.is_floating_point() and not value.requires_grad, f"loss {key!r}: detach it (a float)"
        assert torch.isfinite(value), f"loss {key!r} is {float(value)} after one step"
    for name, net in variant.networks.items():
        moved = any(not torch.equal(p, q) for p, q in zip(net.parameters(), before[name], strict=True))
        assert moved, f"{_name(cls)}: network {name!r} did not change in one train_step"


def check_sampling(cls: type[Variant], resolution: int = RESOLUTION, backbone: str | None = None) -> None:
    """``sample`` (and ``reconstruct``, ``encode``/``decode`` where defined) give images in the
    boundary format, follow a given generator, and leave the networks in training mode."""
    variant = make_variant(cls, resolution=resolution, backbone=backbone)
    variant.train_step(synthetic_batch(4, resolution=resolution))
    shape = (3, resolution, resolution)
    samples = variant.sample(5)
    assert samples.shape == (5, *shape), f"sample(5) has shape {tuple(samples.shape)}, not {(5, *shape)}"
    assert samples.dtype == torch.float32, f"sample gives {samples.dtype}, not float32"
    assert samples.min() >= -1 and samples.max() <= 1, "sample leaves [-1, 1]"
    seeded = functools.partial(torch.Generator().manual_seed, 3)
    assert torch.equal(variant.sample(4, generator=seeded()), variant.sample(4, generator=seeded())), (
        "sample(n, generator=g) must draw from g only: two equally seeded generators gave other images")
    assert all(net.training for net in variant.networks.values()), "sample left a network in eval mode"
    if cls.has_encoder():
        x = synthetic_batch(3, seed=1, resolution=resolution)
        recon = variant.reconstruct(x)
        assert recon.shape == x.shape and recon.min() >= -1 and recon.max() <= 1, (
            f"reconstruct gives shape {tuple(recon.shape)} or leaves [-1, 1]")
        assert all(net.training for net in variant.networks.values()), "reconstruct left eval mode on"
    if callable(getattr(variant, "encode", None)) and callable(getattr(variant, "decode", None)):
        codes = variant.encode(synthetic_batch(3, resolution=resolution))
        codes = codes[0] if isinstance(codes, tuple) else codes  # a Gaussian encoder's (mu, logvar)
        assert codes.dim() == 2 and codes.shape[0] == 3, (
            f"encode gives shape {tuple(codes.shape)}, not [3, D]")
        decoded = variant.decode(codes)
        assert decoded.shape == (3, *shape), f"decode gives shape {tuple(decoded.shape)}, not {(3, *shape)}"


def through_state_dict(variant: Variant) -> Variant:
    """An independent variant in exactly ``variant``'s state, through a serialised checkpoint
    loaded as ``--resume`` loads it (``weights_only``)."""
    buffer = io.BytesIO()
    torch.save(variant.state_dict(), buffer)
    buffer.seek(0)
    other = type(variant)(variant.image_shape, variant.config, seed=12345)  # other init, overwritten
    other.load_state_dict(torch.load(buffer, weights_only=True))
    return other


def check_checkpoint_round_trip(cls: type[Variant], backbone: str | None = None) -> None:
    """Two variants of one seed train alike, and one saved and loaded mid-way takes the same next
    step: every random draw comes from ``self.generator`` and ``state_dict`` holds everything."""
    batches = [synthetic_batch(8, seed) for seed in range(3)]
    a, b = make_variant(cls, backbone=backbone), make_variant(cls, backbone=backbone)
    for batch in batches[:2]:
        losses_a, losses_b = a.train_step(batch), b.train_step(batch)
        assert all(torch.equal(losses_a[k], losses_b[k]) for k in losses_a), (
            f"two {_name(cls)}s of one seed gave different losses: draw randomness from self.generator")
    resumed = through_state_dict(a)
    expected, got = b.train_step(batches[2]), resumed.train_step(batches[2])
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), (
        f"a {_name(cls)} reloaded from its state_dict stepped differently: {got} against {expected}")


def _train(cls, directory: Path, steps: int, ema: float | None, resume: bool,
           backbone: str | None) -> list[dict]:
    from bench.config import RunConfig
    from bench.data.batches import DeviceBatches
    from bench.data.synthetic import synthetic_images
    from bench.store import read_jsonl
    from bench.trainer import Trainer

    settings = RunConfig(budget=f"{steps}steps", batch_size=8, log_every=1, checkpoint_every=None,
                         ema=ema).train_settings()
    batches = DeviceBatches(synthetic_images(32, RESOLUTION), 8, "cpu", seed=0)
    trainer = Trainer(make_variant(cls, backbone=backbone), batches, settings, directory, progress=False)
    if resume:
        assert trainer.load_checkpoint(), "the trainer wrote no checkpoint to resume from"
    trainer.run()
    return read_jsonl(directory / "log.jsonl")


def check_resume(cls: type[Variant], backbone: str | None = None) -> None:
    """Stopped at a checkpoint and resumed (as ``--resume`` does: the trainer's checkpoint file,
    loaded ``weights_only``), a trial logs the same losses as one straight run; with EMA on
    where the variant declares image networks, so the averages resume too."""
    ema = 0.5 if cls.image_networks else None
    with tempfile.TemporaryDirectory() as tmp:
        straight = _train(cls, Path(tmp, "straight"), 4, ema, resume=False, backbone=backbone)
        _train(cls, Path(tmp, "split"), 2, ema, resume=False, backbone=backbone)
        resumed = _train(cls, Path(tmp, "split"), 4, ema, resume=True, backbone=backbone)
    losses = lambda rows: [{k: v for k, v in r.items() if k.startswith("loss")} for r in rows]  # noqa: E731
    assert [r["step"] for r in resumed] == [1, 2, 3, 4], [r["step"] for r in resumed]
    assert losses(resumed) == losses(straight), (
        f"{_name(cls)} resumed at step 2 logged other losses than a straight run:\n"
        f"{losses(resumed)}\nagainst\n{losses(straight)}")


def check_ema(cls: type[Variant], backbone: str | None = None) -> None:
    """``--ema`` works on the variant: its image networks are averaged, sampling under the
    averages gives boundary-format images, and the trained weights come back bit for bit."""
    from bench.ema import GeneratorEMA

    if not cls.image_networks:
        return  # --ema refuses such a variant before training (bench.ema.check_variant)
    variant = make_variant(cls, backbone=backbone)
    ema = GeneratorEMA(variant, 0.5)
    for seed in range(2):
        variant.train_step(synthetic_batch(8, seed))
        ema.update(variant)
    trained = {n: [p.detach().clone() for p in variant.networks[n].parameters()] for n in cls.image_networks}
    with ema.applied(variant):
        samples = variant.sample(3)
        averaged = {n: [p.detach().clone() for p in variant.networks[n].parameters()]
                    for n in cls.image_networks}
    assert samples.shape == (3, 3, RESOLUTION, RESOLUTION) and samples.min() >= -1 and samples.max() <= 1
    moved = [not torch.equal(a, t) for n in trained for a, t in zip(averaged[n], trained[n], strict=True)]
    assert any(moved), "the averages equal the trained weights after two steps at decay 0.5"
    for name in cls.image_networks:
        now = list(variant.networks[name].parameters())
        assert all(torch.equal(p, t) for p, t in zip(now, trained[name], strict=True)), (
            f"network {name!r} did not get its trained weights back after ema.applied")


# name -> check(cls, backbone=None); the pytest module parametrises over these and over the
# registered variants on each registered backbone
CONTRACT_CHECKS = {
    "class": check_class,
    "one_step": check_one_step,
    "sampling": check_sampling,
    "checkpoint_round_trip": check_checkpoint_round_trip,
    "resume": check_resume,
    "ema": check_ema,
}


def check_variant(cls: type[Variant], backbone: str | None = None) -> None:
    """Every contract check on ``cls`` (on ``backbone``, else its Config's); the first failure raises
    ``AssertionError``."""
    with one_thread():
        for check in CONTRACT_CHECKS.values():
            check(cls, backbone=backbone)
