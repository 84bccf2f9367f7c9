"""Latent interpolation pictures (``bench.latents``): slerp, the optional decode/encode contract,
the picture files a trial writes, and the report that shows them.

Tiny variants (width 8, latent 16, 16x16 images) keep this on CPU in seconds.
"""

from __future__ import annotations

import pytest
import torch
from helpers import plugins
from PIL import Image
from run_folders import make_run, read_md
from torch import nn

from bench import Variant
from bench.config import RunConfig
from bench.data.dataset import Dataset, ImageSet
from bench.data.synthetic import synthetic_images
from bench.evaluation import Evaluator
from bench.latents import (
    ENCODED_LATENTS_FILE,
    LATENTS_FILE,
    decode,
    encode,
    encoder_interpolations,
    image_pairs,
    prior_interpolations,
    save_latent_pictures,
    slerp,
)
from bench.report import build_report
from bench.testing.contract import one_thread
from bench.trial import RunContext, TrialSpec, run_trial

RES, LATENT = 16, 16



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks: one thread is as fast, and far faster when the cores are busy."""
    with one_thread():
        yield

def make(name: str, seed: int = 0):
    cls = plugins().models.get(name).obj
    return cls((3, RES, RES), cls.Config(width=8, latent=LATENT), seed=seed)


def held_out(n: int = 24) -> torch.Tensor:
    return synthetic_images(n, RES, seed=1)


# -- slerp -------------------------------------------------------------------------------------
def test_slerp_ends_at_its_inputs_and_stays_on_the_shell_between_them():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(64, 128, generator=g), torch.randn(64, 128, generator=g)
    path = slerp(z0, z1, torch.linspace(0, 1, 11))
    assert path.shape == (64, 11, 128) and path.dtype == z0.dtype
    torch.testing.assert_close(path[:, 0], z0)
    torch.testing.assert_close(path[:, -1], z1)
    norms = path.norm(dim=2)
    low = torch.minimum(z0.norm(dim=1), z1.norm(dim=1)).unsqueeze(1)
    high = torch.maximum(z0.norm(dim=1), z1.norm(dim=1)).unsqueeze(1)
    assert bool(((norms >= low - 1e-4) & (norms <= high + 1e-4)).all())
    # a straight line would cut through the interior: its midpoint is far shorter
    assert bool(((z0 + z1) / 2).norm(dim=1).lt(norms[:, 5] * 0.8).all())
    # the direction turns at constant angular speed
    unit = path / norms.unsqueeze(2)
    angles = torch.arccos((unit[:, 1:] * unit[:, :-1]).sum(2).clamp(-1, 1))
    torch.testing.assert_close(angles, angles[:, :1].expand_as(angles), atol=1e-4, rtol=1e-4)


def test_slerp_of_near_parallel_or_opposite_vectors_is_finite_and_linear():
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    t = torch.linspace(0, 1, 5)
    for other in (z, 2 * z, z + 1e-9, -z):
        path = slerp(z, other, t)
        assert bool(torch.isfinite(path).all())
        linear = z.unsqueeze(1) + t.view(1, -1, 1) * (other - z).unsqueeze(1)
        torch.testing.assert_close(path, linear)


# -- the decode / encode contract ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["gan", "vae"])
def test_prior_rows_start_and_end_at_the_decoded_draws(name):
    variant = make(name)
    images = prior_interpolations(variant, torch.Generator().manual_seed(3), rows=8, steps=10)
    assert images.shape == (80, 3, RES, RES)
    g = torch.Generator().manual_seed(3)
    z0, z1 = torch.randn(8, LATENT, generator=g), torch.randn(8, LATENT, generator=g)
    rows = images.view(8, 10, 3, RES, RES)
    torch.testing.assert_close(rows[:, 0], decode(variant, z0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rows[:, -1], decode(variant, z1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(rows[:, 0], rows[:, -1])


def test_encoder_rows_start_and_end_at_the_decoded_encodings():
    variant = make("vae")
    images = held_out()
    rows = encoder_interpolations(variant, images, rows=8, steps=10).view(8, 10, 3, RES, RES)
    x0, x1 = image_pairs(images, 8)
    assert x0.shape == x1.shape == (8, 3, RES, RES) and not torch.equal(x0, x1)
    mu0, mu1 = _eval_mu(variant, x0), _eval_mu(variant, x1)  # encode's first item: the posterior mean
    torch.testing.assert_close(encode(variant, x0), mu0)
    torch.testing.assert_close(rows[:, 0], decode(variant, mu0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rows[:, -1], decode(variant, mu1), atol=1e-5, rtol=1e-5)


def _eval_mu(variant, x):
    """The posterior mean with the encoder in eval mode (running batch-norm statistics)."""
    encoder = variant.networks["encoder"]
    encoder.eval()
    try:
        with torch.no_grad():
            return variant.encode(x)[0]
    finally:
        encoder.train()


def test_pictures_leave_the_variant_as_they_found_it(tmp_path):
    variant = make("vae")
    variant.networks["decoder"].eval()  # a mixed set of modes is restored as it was
    before = {(n, k): v.clone() for n, net in variant.networks.items() for k, v in net.state_dict().items()}
    generator_state = variant.generator.get_state().clone()
    save_latent_pictures(variant, tmp_path, 0, held_out())
    assert not variant.networks["decoder"].training and variant.networks["encoder"].training
    after = {(n, k): v for n, net in variant.networks.items() for k, v in net.state_dict().items()}
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch-norm statistics included
    assert torch.equal(variant.generator.get_state(), generator_state)


# -- the picture files ---------------------------------------------------------------------------
def test_picture_files_have_the_grid_size(tmp_path):
    pad = 2  # torchvision's save_image puts 2 pixels around every image
    gan = tmp_path / "gan"
    gan.mkdir()
    assert save_latent_pictures(make("gan"), gan, 0, held_out()) == [gan / LATENTS_FILE]  # no encoder
    with Image.open(gan / LATENTS_FILE) as image:
        assert image.size == (10 * (RES + pad) + pad, 8 * (RES + pad) + pad)
    vae = tmp_path / "vae"
    vae.mkdir()
    written = save_latent_pictures(make("vae"), vae, 0, held_out())
    assert written == [vae / LATENTS_FILE, vae / ENCODED_LATENTS_FILE]
    with Image.open(vae / ENCODED_LATENTS_FILE) as image:  # test image, 10 decodings, test image
        assert image.size == (12 * (RES + pad) + pad, 8 * (RES + pad) + pad)
    # without a test split: no encoded picture; with few test images: fewer rows
    none = tmp_path / "none"
    none.mkdir()
    assert save_latent_pictures(make("vae"), none, 0, None) == [none / LATENTS_FILE]
    few = tmp_path / "few"
    few.mkdir()
    save_latent_pictures(make("vae"), few, 0, held_out(6))
    with Image.open(few / ENCODED_LATENTS_FILE) as image:
        assert image.size[1] == 3 * (RES + pad) + pad


def test_the_prior_pairs_follow_the_trial_seed():
    variant = make("gan")
    first = prior_interpolations(variant, torch.Generator().manual_seed(0))
    assert torch.equal(first, prior_interpolations(variant, torch.Generator().manual_seed(0)))
    assert not torch.equal(first, prior_interpolations(variant, torch.Generator().manual_seed(1)))


class NoDecode(Variant):
    family = "gan"

    def build(self):
        self.networks = {"net": nn.Linear(2, 2)}
        self.optimizers = {"net": torch.optim.SGD(self.networks["net"].parameters(), lr=0.1)}

    def train_step(self, batch):
        return {}

    def sample(self, n, generator=None):
        return torch.zeros(n, *self.image_shape)


def test_a_variant_without_decode_is_skipped(tmp_path):
    assert save_latent_pictures(NoDecode((3, RES, RES)), tmp_path, 0, held_out()) == []
    assert list(tmp_path.iterdir()) == []


def test_a_decode_of_the_wrong_shape_is_named():
    variant = NoDecode((3, RES, RES))
    variant.config.latent = LATENT
    variant.decode = lambda z: torch.zeros(len(z), 3, 8, 8)
    with pytest.raises(ValueError, match=r"NoDecode.decode returned \(80, 3, 8, 8\) for 80 latents"):
        prior_interpolations(variant, torch.Generator().manual_seed(0))


# -- in a trial ----------------------------------------------------------------------------------
def _context(tmp_path) -> RunContext:
    config = RunConfig(models=["gan", "vae"], dataset="toy", budget="2steps", batch_size=16, log_every=1,
                       eval_samples=0, recon_samples=16,
                       options={m: {"width": "8", "latent": str(LATENT)} for m in ("gan", "vae")})
    dataset = Dataset("toy", {"train": lambda: ImageSet(synthetic_images(32, RES, 0), "toy train"),
                              "test": lambda: ImageSet(held_out(), "toy test")})
    device = torch.device("cpu")
    evaluator = Evaluator(config.eval_settings(), dataset, device, plugins().metric_objects())
    return RunContext(tmp_path, config, plugins(), dataset, device, evaluator, progress=False)


def test_a_trial_saves_the_pictures_and_survives_a_failing_one(tmp_path, monkeypatch, capsys):
    ctx = _context(tmp_path)
    assert run_trial(ctx, TrialSpec("vae", 0)).status == "completed"
    folder = tmp_path / "trials" / "vae-s0"
    assert (folder / LATENTS_FILE).is_file() and (folder / ENCODED_LATENTS_FILE).is_file()

    gan = plugins().models.get("gan").obj

    def broken(self, z):
        raise RuntimeError("no pictures today")

    monkeypatch.setattr(gan, "decode", broken)
    assert run_trial(ctx, TrialSpec("gan", 0)).status == "completed"
    warning = "bench: trial gan-s0: no latent pictures (RuntimeError: no pictures today)"
    assert warning in capsys.readouterr().err
    assert not (tmp_path / "trials" / "gan-s0" / LATENTS_FILE).exists()


# -- in the report -------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_report_shows_the_pictures_when_trials_have_them(tmp_path):
    run = make_run(tmp_path, seeds=(0,))
    build_report([run])
    assert not (run / "plots" / "latents.png").exists()  # none yet: skipped silently
    assert "no trial has a latents" not in read_md(run)
    Image.new("RGB", (182, 146), "gray").save(run / "trials" / "gan-s0" / LATENTS_FILE)
    Image.new("RGB", (182, 146), "gray").save(run / "trials" / "vae-s0" / LATENTS_FILE)
    Image.new("RGB", (218, 146), "gray").save(run / "trials" / "vae-s0" / ENCODED_LATENTS_FILE)
    paths = build_report([run])
    md = read_md(run)
    assert "](<plots/latents.png>)" in md and "](<plots/latents-encoded.png>)" in md
    assert (run / "plots" / "latents.png").is_file() and (run / "plots" / "latents-encoded.png").is_file()
    html = paths["html"].read_text()
    assert "each row decodes 10 points, left to right, along the spherical path" in html
    assert "each row is a test image (left), 10 decodings" in html
    assert md.find("plots/samples.png") < md.find("plots/latents.png")
