"""The FID Inception network run by OpenVINO on the CPU (the default backend there, ``auto``).

On a 2-core AVX2 CPU OpenVINO's own convolution kernels run this network about 1.5x faster than
PyTorch's oneDNN path (``results/benchmarks/README.md``) in true float32: the features agree with
PyTorch's to about 1e-6 of their scale (a test holds them to 1e-5), so FIDs agree to far better
than 1e-4 relative and reference features cached by either backend serve both.

The network is converted from bench's PyTorch module once per machine and input size (about
5 s) and kept as OpenVINO IR in the cache folder, keyed by the weights' sha256, the feature
list, the input size and the OpenVINO version; later processes read it and compile it in well
under a second. The model takes the uint8 images themselves: the TensorFlow-1 resize to 299 x 299
and the scaling (``InceptionFeatures.resized``) are traced into it, so they run in the inference
streams beside the convolutions (about 7% more images/s than resizing in PyTorch first, on the
2-core CPU; features the same to 1e-6 of their scale).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from bench.metrics.errors import MetricsError
from bench.metrics.signal_stack import kept_signal_stack
from bench.store.files import atomic_write

TRACE_BATCH = 1  # the network is traced on one image (tracing runs it); each batch size is a reshape
CHUNK = 64  # images per inference request; requests queue on one stream per core
PREFERRED_BATCH = 4 * CHUNK  # what extract_features hands over at once, to keep every stream busy
DEFAULT_SIZE = (32, 32)  # CIFAR-10's images: the model converted when the backend loads


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class _FromImages(torch.nn.Module):
    """uint8 images to features: the resize and scaling, then the network (what is traced)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network.from_resized(self.network.resized(x))


def _ir_folder(network, cache_dir: Path, size: tuple[int, int]) -> Path:
    import openvino

    features = "+".join(network.features_list)
    version = openvino.get_version().split("-")[0]
    name = f"inception-{network.weights_sha256[:16]}-{features}-{size[0]}x{size[1]}-ov{version}"
    return cache_dir / "openvino" / name


def _converted_model(network, cache_dir: Path, size: tuple[int, int], log=None):
    """The OpenVINO model of ``network`` for uint8 images of ``size`` (height, width), from the
    cache or converted now (the resize's source positions are constants of the traced graph)."""
    import openvino

    folder = _ir_folder(network, cache_dir, size)
    xml = folder / "model.xml"
    if xml.is_file():
        try:
            return openvino.Core().read_model(str(xml))
        except Exception:  # a damaged cache entry: convert again
            shutil.rmtree(folder, ignore_errors=True)
    if log:
        log(f"converting the Inception network to OpenVINO for {size[0]}x{size[1]} images "
            "(once per machine and size, about 5 s) ...")
    example = torch.zeros(TRACE_BATCH, 3, *size, dtype=torch.uint8)
    # tracing first: convert_model's own tracing runs the network repeatedly. Its warnings are
    # about what is intended here (the resize's shapes become constants: the IR is per input
    # size) or torch's own (torch.jit.trace's deprecation), nothing a user can act on.
    with torch.no_grad(), warnings.catch_warnings():
        for category in (torch.jit.TracerWarning, UserWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        traced = torch.jit.trace(_FromImages(network).eval(), example, check_trace=False)
        model = openvino.convert_model(traced, example_input=example)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".converting-") as staging:
            openvino.save_model(model, str(Path(staging) / "model.xml"), compress_to_fp16=False)
            for name in ("model.bin", "model.xml"):  # the .xml last: it marks a whole entry
                with open(Path(staging) / name, "rb") as source:
                    atomic_write(folder / name, lambda f, s=source: shutil.copyfileobj(s, f, 1 << 20))
    except OSError:  # a read-only cache: use the converted model without keeping it
        pass
    return model


class OpenVINOInception(torch.nn.Module):
    """Drop-in for bench's ``InceptionFeatures`` on the CPU: uint8 images in, the same feature
    tuple out. It keeps the PyTorch network (for its name, feature list and input check); the
    resize and the convolutions run in an OpenVINO model converted once per input size and
    compiled once per batch size."""

    backend = "openvino"
    preferred_batch = PREFERRED_BATCH

    def __init__(self, network, cache_dir: Path, log=None):
        super().__init__()
        self.network = network
        self.features_list = list(network.features_list)
        self.weights_path = network.weights_path
        self.weights_sha256 = network.weights_sha256
        self.has_logits_head = network.has_logits_head
        self._cache_dir = Path(cache_dir)
        self._log = log
        self._models: dict[tuple[int, int], object] = {}
        self._compiled: dict[tuple[int, int, int], object] = {}
        self._model_for(DEFAULT_SIZE)  # CIFAR-sized: converted (or read) now, not mid-evaluation

    def get_name(self):
        return self.network.get_name()

    def get_requested_features_list(self):
        return self.network.get_requested_features_list()

    def convert_features_tuple_to_dict(self, features):
        return self.network.convert_features_tuple_to_dict(features)

    def _model_for(self, size: tuple[int, int]):
        if size not in self._models:
            self._models[size] = _converted_model(self.network, self._cache_dir, size, self._log)
        return self._models[size]

    def _compiled_for(self, batch: int, size: tuple[int, int]):
        key = (batch, *size)
        if key not in self._compiled:
            import openvino

            model = self._model_for(size).clone()
            model.reshape([batch, 3, *size])
            # the CPU plugin swaps this thread's signal stack (bench.metrics.signal_stack)
            with kept_signal_stack():
                self._compiled[key] = openvino.Core().compile_model(model, "CPU", {
                    "INFERENCE_PRECISION_HINT": "f32",  # never bf16/fp16: FIDs must match torch-fidelity's
                    # a stream per core, requests queued on them: 15-20% more images/s than one
                    # stream on every core, on the 2-core CPU
                    "PERFORMANCE_HINT": "THROUGHPUT"})
        return self._compiled[key]

    def forward(self, x: torch.Tensor):
        if x.device.type != "cpu":
            raise MetricsError("the OpenVINO Inception backend runs on the CPU only; use "
                               "--inception-backend torch for a GPU")
        from openvino import AsyncInferQueue

        from bench.metrics.inception_network import check_images  # torch-fidelity: imported when used

        check_images(x)
        size = (x.shape[2], x.shape[3])
        x = x.contiguous()  # NCHW, as traced
        # THROUGHPUT makes one stream per core: a small batch is still split across them
        chunk = min(CHUNK, -(-len(x) // max(1, torch.get_num_threads())))
        parts = list(torch.split(x, chunk))
        names = range(len(self.features_list))
        outputs: dict[int, list] = {}
        compiled = self._compiled_for(chunk, size)
        queue = AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        queue.set_callback(lambda request, i: outputs.__setitem__(
            i, [request.get_output_tensor(k).data.copy() for k in names]))
        for i, part in enumerate(parts):
            if len(part) == chunk:
                queue.start_async(part.numpy(), i)
            else:  # the short last part: its own compiled size, while the queue runs
                result = self._compiled_for(len(part), size)(part.numpy())
                outputs[i] = [result[k].copy() for k in names]
        queue.wait_all()
        return tuple(torch.from_numpy(np.concatenate([outputs[i][k] for i in range(len(parts))]))
                     for k in names)
