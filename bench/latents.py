"""Pictures of a trained variant's latent space: interpolations between prior draws and, for
encoder variants, between the encodings of two test images.

The optional contract, beyond ``bench.variant.Variant`` (a variant without ``decode`` simply
gets no pictures):

* ``decode(z)``: latents ``[n, latent]``, ``latent = variant.config.latent``, to images float
  in [-1, 1], ``[n, 3, H, W]``.
* ``encode(x)`` (encoder variants): images float in [-1, 1] ``[n, 3, H, W]`` to a latent tensor
  ``[n, latent]``, or a tuple whose first item is one (``bench.autoencoder.GaussianAutoencoder``
  returns ``(mu, logvar)``: the posterior mean is used).

Both are called under ``torch.no_grad()`` with every network of the variant in eval mode (their
modes restored after), so a decode written for training, such as ``GaussianAutoencoder``'s,
serves as it is. The prior pairs come from a generator of their own seeded by the trial seed:
the variant's own generator, whose state is checkpointed, is never drawn from. The test pairs
are the same for every trial (seed 0), so variants can be compared picture by picture.

``save_latent_pictures`` writes ``LATENTS_FILE`` and ``ENCODED_LATENTS_FILE`` into a trial folder.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from bench.images import save_grid
from bench.store.layout import ENCODED_LATENTS_FILE, LATENTS_FILE

ROWS, STEPS = 8, 10
PARALLEL = 1e-6  # below this sine of the angle between two directions, interpolate linearly


def slerp(z0: torch.Tensor, z1: torch.Tensor, t) -> torch.Tensor:
    """Spherical interpolation from each row of ``z0`` to the same row of ``z1`` (``[n, d]``) at
    the fractions ``t`` (``[steps]``; 0 gives z0, 1 gives z1): ``[n, steps, d]``.

    The direction moves along the great circle at constant angular speed and the length changes
    linearly, so every point's norm lies between those of its ends: for Gaussian draws the path
    stays on the shell where N(0, I) puts its mass, where a straight line would cut through the
    low-norm interior. Near-parallel or opposite directions (no well-defined great circle) are
    interpolated linearly. Computed in float64, returned in ``z0``'s dtype.
    """
    a, b = z0.double(), z1.double()
    t = torch.as_tensor(t, dtype=torch.float64, device=a.device).view(1, -1, 1)
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua, ub = a / na.clamp_min(1e-300), b / nb.clamp_min(1e-300)
    omega = torch.arccos((ua * ub).sum(1, keepdim=True).clamp(-1.0, 1.0)).unsqueeze(1)  # [n, 1, 1]
    sin = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) * ua.unsqueeze(1)
                 + torch.sin(t * omega) * ub.unsqueeze(1)) / sin.clamp_min(PARALLEL)
    spherical = direction * ((1 - t) * na.unsqueeze(1) + t * nb.unsqueeze(1))
    linear = (1 - t) * a.unsqueeze(1) + t * b.unsqueeze(1)
    return torch.where(sin < PARALLEL, linear, spherical).to(z0.dtype)


def has_decode(variant) -> bool:
    return callable(getattr(variant, "decode", None))


def has_encode(variant) -> bool:
    return callable(getattr(variant, "encode", None))


def latent_size(variant) -> int:
    size = getattr(getattr(variant, "config", None), "latent", None)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"{type(variant).__name__} has decode but no config.latent (the size of z)")
    return size


@contextlib.contextmanager
def inference(variant):
    """No gradients, every network in eval mode (batch norm on its running statistics, which
    stay untouched); each network's mode is restored on leaving."""
    modes = {name: net.training for name, net in variant.networks.items()}
    variant.train(False)
    try:
        with torch.no_grad():
            yield
    finally:
        for name, net in variant.networks.items():
            net.train(modes[name])


def decode(variant, z: torch.Tensor) -> torch.Tensor:
    """``variant.decode(z)`` as float, its shape checked against the variant's images."""
    with inference(variant):
        images = variant.decode(z.to(variant.device)).float()
    if tuple(images.shape) != (len(z), *variant.image_shape):
        raise ValueError(f"{type(variant).__name__}.decode returned {tuple(images.shape)} for {len(z)} "
                         f"latents; expected {(len(z), *variant.image_shape)}")
    return images


def encode(variant, x: torch.Tensor) -> torch.Tensor:
    """``variant.encode(x)`` (its first item if it is a tuple) as float ``[n, latent]``."""
    with inference(variant):
        out = variant.encode(x.to(variant.device))
    z = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(z, torch.Tensor) or tuple(z.shape) != (len(x), latent_size(variant)):
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"{type(variant).__name__}.encode returned {shape} for {len(x)} images; expected "
                         f"a tensor [{len(x)}, {latent_size(variant)}] or a tuple starting with one")
    return z.float()


def prior_interpolations(variant, generator: torch.Generator, rows: int = ROWS,
                         steps: int = STEPS) -> torch.Tensor:
    """``rows`` pairs z0, z1 ~ N(0, I) drawn from ``generator``, each decoded at ``steps`` points
    of ``slerp(z0, z1)`` from z0 to z1: ``[rows * steps, 3, H, W]``, row by row."""
    latent = latent_size(variant)
    z0 = torch.randn(rows, latent, generator=generator, device=generator.device)
    z1 = torch.randn(rows, latent, generator=generator, device=generator.device)
    path = slerp(z0, z1, torch.linspace(0, 1, steps))
    return decode(variant, path.reshape(rows * steps, latent))


def image_pairs(images: torch.Tensor, rows: int = ROWS) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sets of ``min(rows, N // 2)`` distinct images from uint8 ``[N, 3, H, W]``, the same for
    every trial (a fixed permutation, seed 0), as float in [-1, 1]."""
    rows = min(rows, len(images) // 2)
    if rows < 1:
        raise ValueError(f"interpolating between encodings needs 2 test images, got {len(images)}")
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[: 2 * rows]
    x = images[index].float() / 127.5 - 1
    return x[:rows], x[rows:]


def encoder_interpolations(variant, test_images_uint8: torch.Tensor, rows: int = ROWS,
                           steps: int = STEPS) -> torch.Tensor:
    """``image_pairs`` encoded to z0, z1 and each decoded at ``steps`` points of ``slerp(z0, z1)``:
    ``[rows * steps, 3, H, W]`` (fewer rows when the split has fewer than ``2 * rows`` images)."""
    x0, x1 = image_pairs(test_images_uint8, rows)
    z0, z1 = encode(variant, x0), encode(variant, x1)
    path = slerp(z0, z1, torch.linspace(0, 1, steps, device=z0.device))
    return decode(variant, path.reshape(-1, z0.shape[1]))


def _save(images: torch.Tensor, path: Path, per_row: int) -> Path:
    save_grid(images, path, nrow=per_row, value_range=(-1, 1))
    return path


def save_latent_pictures(variant, directory: Path, seed: int, test_images: torch.Tensor | None = None,
                         rows: int = ROWS, steps: int = STEPS) -> list[Path]:
    """Write ``LATENTS_FILE`` (prior interpolations, pairs drawn with ``seed``) into ``directory`` and,
    for a variant with ``encode`` given ``test_images`` (uint8, the test split), ``ENCODED_LATENTS_FILE``
    (each row: a test image, its interpolation to another's encoding, that image). Returns the
    files written: none for a variant without ``decode``."""
    if not has_decode(variant):
        return []
    directory = Path(directory)
    generator = torch.Generator().manual_seed(seed)
    written = [_save(prior_interpolations(variant, generator, rows, steps), directory / LATENTS_FILE, steps)]
    if has_encode(variant) and test_images is not None:
        x0, x1 = image_pairs(test_images, rows)
        decoded = encoder_interpolations(variant, test_images, rows, steps).cpu()
        framed = torch.cat([x0.unsqueeze(1), decoded.view(len(x0), steps, *decoded.shape[1:]),
                            x1.unsqueeze(1)], dim=1)
        written.append(_save(framed.flatten(0, 1), directory / ENCODED_LATENTS_FILE, steps + 2))
    return written
