"""DINOv2 ViT features (Oquab et al. 2023) as dgm-eval computes them (Stein et al. 2023).

dgm-eval (layer6ai-labs/dgm-eval, ``dgm_eval/models/dinov2.py``) feeds each image to the authors'
``torch.hub`` model as: PIL bicubic resize to 224 x 224 (``torchvision.transforms.Resize`` on the PIL
image, which rounds back to 8 bits), ``ToTensor`` (/255), ImageNet mean/std normalisation; the
feature is the model's output, the CLS token after the final layer norm (``x_norm_clstoken``: the
hub models' head is the identity). bench does the same resize with PIL on each uint8 image.

The network is timm's ``vit_{small,base,large}_patch14_dinov2`` (the architecture of the authors'
``DinoVisionTransformer``: patch embedding, CLS token, LayerScale blocks, final norm), built for
224 x 224 input. The authors' checkpoints hold a position embedding for 518 x 518 (37 x 37 patches),
which their model interpolates at every forward pass for a 224 input: bicubic, no antialiasing,
``scale_factor = (16 + 0.1) / 37`` (their ``interpolate_offset``). That interpolation depends only on
the input size, so it is done once here, when the weights are loaded, exactly as theirs; timm's own
loader would resample with ``size=`` and antialiasing, a slightly different embedding. Both the
authors' files (``dinov2_vits14_pretrain.pth``; ``mask_token`` is dropped by timm's
``checkpoint_filter_fn``) and timm's state dicts of the same models load.

Weights: ``--extractor-weights NAME=PATH``, else the authors' download into the torch hub cache
(a ``MetricsError`` saying how to pass a file when that fails, e.g. offline).
"""

from __future__ import annotations

import math
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch

from bench.metrics.errors import MetricsError

INPUT_SIZE = 224
PATCH = 14
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
INTERPOLATE_OFFSET = 0.1  # the authors' DinoVisionTransformer default
FEATURE = "cls"  # the feature layer: the CLS token after the final norm
TIMM_MODELS = {"vits14": "vit_small_patch14_dinov2", "vitb14": "vit_base_patch14_dinov2",
               "vitl14": "vit_large_patch14_dinov2"}
URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_{arch}/dinov2_{arch}_pretrain.pth"


def _name(arch: str) -> str:
    return f"dinov2-vit-{arch[3]}-14"


def _how_to_pass(arch: str) -> str:
    return (f"pass --extractor-weights {_name(arch)}=PATH (or BENCH_EXTRACTOR_WEIGHTS={_name(arch)}=PATH) "
            f"with the authors' dinov2_{arch}_pretrain.pth ({URL.format(arch=arch)}) or timm's "
            f"{TIMM_MODELS[arch]} state dict")


def build_network(arch: str) -> torch.nn.Module:
    """timm's DINOv2 ViT for 224 x 224 input, no head (its output: the normed CLS), its parameters
    allocated but not initialised (weights are loaded into every one of them)."""
    try:
        import timm
    except ImportError:
        raise MetricsError(f"--extractors {_name(arch)} needs timm: pip install "
                           "'bench-gen[dinov2]'") from None
    with torch.device("meta"):
        network = timm.create_model(TIMM_MODELS[arch], pretrained=False, num_classes=0, img_size=INPUT_SIZE)
    return network.to_empty(device="cpu")


def interpolate_pos_embed(pos_embed: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """The position embedding the authors' model adds for ``size`` x ``size`` input
    (``DinoVisionTransformer.interpolate_pos_encoding``), from the checkpoint's (``[1, 1 + M*M, D]``)."""
    grid = size // PATCH
    patches = pos_embed.shape[1] - 1
    side = int(math.sqrt(patches))
    if side * side != patches:
        raise MetricsError(f"a position embedding of {patches} patches is not a square grid")
    if side == grid:
        return pos_embed
    cls, patch = pos_embed[:, :1], pos_embed[:, 1:].float()
    dim = patch.shape[-1]
    scale = (grid + INTERPOLATE_OFFSET) / side
    patch = torch.nn.functional.interpolate(patch.reshape(1, side, side, dim).permute(0, 3, 1, 2),
                                            scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if tuple(patch.shape[-2:]) != (grid, grid):
        raise MetricsError(f"position embedding interpolated to {tuple(patch.shape[-2:])}, not {grid}x{grid}")
    patch = patch.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)
    return torch.cat([cls, patch], dim=1)


def _read_state(arch: str, path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MetricsError(f"{_name(arch)} weights {path} cannot be read as torch weights "
                           f"({type(exc).__name__}); Fix: {_how_to_pass(arch)}") from None
    for wrapper in ("model", "state_dict", "teacher"):  # a training checkpoint around the state dict
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict) and "pos_embed" not in state:
            state = state[wrapper]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise MetricsError(f"{_name(arch)} weights {path} are not a state dict (name -> tensor); "
                           f"Fix: {_how_to_pass(arch)}")
    return state


def load_weights(network: torch.nn.Module, arch: str, path: Path, state: dict | None = None) -> None:
    """Load the authors' checkpoint or timm's state dict at ``path`` (``state``: already read from it)
    into ``network`` (strictly), or a MetricsError naming the file and the extractor."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    state = dict(state if state is not None else _read_state(arch, path))
    problem = None
    if "pos_embed" not in state or state["pos_embed"].ndim != 3:
        problem = "it has no pos_embed of shape [1, tokens, dim]"
    else:
        try:
            state["pos_embed"] = interpolate_pos_embed(state["pos_embed"])
            state = checkpoint_filter_fn(state, network)
            network.load_state_dict(state, strict=True)
        except (MetricsError, RuntimeError, ValueError, KeyError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            # load_state_dict's "Error(s) in loading state_dict for ...:" heads the list of problems
            problem = lines[1 if len(lines) > 1 and lines[0].startswith("Error(s)") else 0][:300]
    if problem:
        raise MetricsError(f"{path} does not hold {_name(arch)}'s weights ({TIMM_MODELS[arch]}): {problem}; "
                           f"Fix: {_how_to_pass(arch)}")


def check_weights_file(arch: str, path: Path) -> None:
    """Raise MetricsError unless ``path`` holds this network's weights (loads them into a new one)."""
    state = _read_state(arch, Path(path))
    load_weights(build_network(arch), arch, Path(path), state)


def download_weights(arch: str) -> Path:
    """The authors' checkpoint in the torch hub cache, downloaded there if missing."""
    url = URL.format(arch=arch)
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with redirect_stdout(sys.stderr):
            torch.hub.download_url_to_file(url, str(path), progress=False)
    except Exception as exc:  # offline, HTTP errors, a read-only cache...
        raise MetricsError(f"no {_name(arch)} weights given and downloading them from {url} failed "
                           f"({type(exc).__name__}: {exc}); this machine may be offline. "
                           f"Fix: {_how_to_pass(arch)}") from None
    return path


def resize_like_dgm_eval(images: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` to float ``[N, 3, size, size]`` in [0, 1]: PIL's bicubic resize of
    each image (8-bit result, as torchvision's ``Resize`` of a PIL image), then /255."""
    from PIL import Image

    arrays = images.permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BICUBIC)) for a in arrays])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


class DINOv2Features(torch.nn.Module):
    """uint8 images in, ``(cls [N, D] float32,)`` out, with torch-fidelity's extractor interface."""

    feature_layer = FEATURE

    def __init__(self, arch: str, network: torch.nn.Module):
        super().__init__()
        self.arch, self.network = arch, network
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def get_name(self) -> str:
        return _name(self.arch)

    def get_requested_features_list(self) -> list[str]:
        return [FEATURE]

    def convert_features_tuple_to_dict(self, features) -> dict:
        return {FEATURE: features[0]}

    def forward(self, x: torch.Tensor):
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise MetricsError(f"expected uint8 images [N, 3, H, W], got {x.dtype} {tuple(x.shape)}")
        x = resize_like_dgm_eval(x).to(self.mean.device)
        x = (x - self.mean) / self.std
        return (self.network(x).float(),)


def load_dinov2(arch: str, weights_path, device="cpu") -> DINOv2Features:
    """The DINOv2 extractor on ``device``, eval mode, frozen, with ``weights_path`` loaded (None:
    the authors' download)."""
    from bench.metrics.inception import weights_sha256

    path = Path(weights_path) if weights_path is not None else download_weights(arch)
    state = _read_state(arch, path)
    network = build_network(arch)
    load_weights(network, arch, path, state)
    extractor = DINOv2Features(arch, network).eval().requires_grad_(False).to(device)
    extractor.weights_path = str(path)
    extractor.weights_sha256 = weights_sha256(path)
    return extractor
