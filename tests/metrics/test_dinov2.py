"""bench.metrics.dinov2: the DINOv2 extractor loads the authors' checkpoint layout and timm's state
dicts into the same network, gives the authors' model's features, feeds images as dgm-eval does, and
refuses a wrong file in one line naming it.

No machine here can download the DINOv2 weights, so the checkpoint is the official architecture's
layout with random weights: timm's ``vit_small_patch14_dinov2`` at the authors' 518 x 518 (37 x 37
position embeddings) plus their ``mask_token``; the features are compared with the authors' forward
pass written out below from their ``DinoVisionTransformer`` (patch embedding, CLS token, the position
embedding interpolated with their offset, LayerScale blocks, final norm, CLS token), on that file.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("timm")

from bench.metrics.dinov2 import (  # noqa: E402
    MEAN,
    STD,
    interpolate_pos_embed,
    load_dinov2,
    resize_like_dgm_eval,
)
from bench.metrics.errors import MetricsError  # noqa: E402

HEADS, DEPTH, DIM = 6, 12, 384  # ViT-S/14


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """A checkpoint in the authors' layout (dinov2_vits14_pretrain.pth's keys and shapes), random."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0)  # 518 x 518
    state = {}
    for key, value in model.state_dict().items():
        noise = torch.randn(value.shape) * (0.1 if key.endswith(("gamma", "norm1.weight", "norm2.weight",
                                                                   "norm.weight")) else 0.05)
        state[key] = (1 + noise) if key.endswith("norm1.weight") or key.endswith("norm2.weight") \
            or key == "norm.weight" else noise
    state["mask_token"] = torch.zeros(1, DIM)
    assert state["pos_embed"].shape == (1, 1 + 37 * 37, DIM)
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_pretrain.pth"
    torch.save(state, path)
    return path, state


def authors_forward(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The authors' DinoVisionTransformer.forward (x_norm_clstoken) on normalised [B, 3, 224, 224]."""
    w, eps = state, 1e-6
    x = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=14)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([w["cls_token"].expand(len(x), -1, -1), x], dim=1)
    pos, side = w["pos_embed"], int(math.sqrt(w["pos_embed"].shape[1] - 1))
    scale = (224 // 14 + 0.1) / side  # interpolate_offset 0.1, no antialiasing
    grid = pos[:, 1:].reshape(1, side, side, DIM).permute(0, 3, 1, 2)
    patch = F.interpolate(grid, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    x = x + torch.cat([pos[:, :1], patch.permute(0, 2, 3, 1).reshape(1, -1, DIM)], dim=1)
    b, n, _ = x.shape
    for i in range(DEPTH):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (DIM,), w[p + "norm1.weight"], w[p + "norm1.bias"], eps)
        qkv = F.linear(h, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(b, n, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        attn = ((q * (DIM // HEADS) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        h = (attn @ v).transpose(1, 2).reshape(b, n, DIM)
        h = F.linear(h, w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
        x = x + w[p + "ls1.gamma"] * h
        h = F.layer_norm(x, (DIM,), w[p + "norm2.weight"], w[p + "norm2.bias"], eps)
        h = F.linear(F.gelu(F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])),
                     w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
        x = x + w[p + "ls2.gamma"] * h
    return F.layer_norm(x, (DIM,), w["norm.weight"], w["norm.bias"], eps)[:, 0]


def _images(n=3, size=32):
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)


def _normalised(images):
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (MEAN, STD))
    return (resize_like_dgm_eval(images) - mean) / std


@pytest.fixture(scope="module")
def extractor(official):
    return load_dinov2("vits14", official[0])


@pytest.mark.slow
def test_the_authors_checkpoint_gives_the_authors_features(official, extractor):
    path, state = official
    images = _images(2)
    with torch.no_grad():
        ours = extractor(images)[0]
        expected = authors_forward(state, _normalised(images))
    assert ours.shape == (2, DIM) and extractor.get_requested_features_list() == ["cls"]
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    assert extractor.get_name() == "dinov2-vit-s-14" and len(extractor.weights_sha256) == 64


@pytest.mark.slow
def test_timms_state_dict_loads_the_same(extractor, tmp_path):
    """timm's state dict of the same model gives the same features (at 518 x 518 it is the authors'
    file without mask_token, above; here at 224 x 224, position embeddings already interpolated)."""
    images = _images(2)
    at_224 = tmp_path / "timm-224.pth"
    torch.save(extractor.network.state_dict(), at_224)
    with torch.no_grad():
        assert torch.equal(load_dinov2("vits14", at_224)(images)[0], extractor(images)[0])


def test_images_are_resized_as_dgm_eval_does():
    """PIL bicubic through torchvision's Resize on the PIL image, then ToTensor: dgm-eval's transform."""
    import torchvision.transforms as T
    from PIL import Image

    images = _images(2, 16)
    transform = T.Compose([T.Resize((224, 224), T.InterpolationMode.BICUBIC), T.ToTensor()])
    expected = torch.stack([transform(Image.fromarray(a.permute(1, 2, 0).numpy())) for a in images])
    assert torch.equal(resize_like_dgm_eval(images), expected)


def test_position_embedding_at_the_input_size_is_kept():
    pos = torch.randn(1, 1 + 16 * 16, 8)
    assert interpolate_pos_embed(pos) is pos
    assert interpolate_pos_embed(torch.randn(1, 1 + 37 * 37, 8)).shape == (1, 257, 8)


def test_wrong_files_are_one_line_naming_file_and_extractor(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not torch")
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    other = tmp_path / "other.pth"  # another architecture: ViT-B's width
    torch.save({"pos_embed": torch.zeros(1, 257, 768), "cls_token": torch.zeros(1, 1, 768)}, other)
    cases = ((garbage, "cannot be read"), (listed, "not a state dict"),
             (other, "does not hold dinov2-vit-s-14's weights (vit_small_patch14_dinov2): Missing key"))
    for path, problem in cases:
        with pytest.raises(MetricsError) as err:
            load_dinov2("vits14", path)
        message = str(err.value)
        assert str(path) in message and "dinov2-vit-s-14" in message and problem in message
        assert "--extractor-weights dinov2-vit-s-14=PATH" in message and "\n" not in message


def test_no_weights_offline_says_how_to_pass_them(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(MetricsError, match=r"downloading them from https://dl\.fbaipublicfiles\.com/dinov2/"
                                           r"dinov2_vits14/dinov2_vits14_pretrain\.pth failed .*offline.*"
                                           r"--extractor-weights dinov2-vit-s-14=PATH"):
        load_dinov2("vits14", None)
