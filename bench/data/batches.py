"""On-device batching: the training set lives on the device as one uint8 tensor.

No DataLoader workers and no per-image Python work: a batch is one index
gather, an optional random horizontal flip and one scale to float [-1, 1].
"""

from __future__ import annotations

import torch


class DeviceBatches:
    """Endless epochs of shuffled batches (drop-last) from ``uint8 [N, 3, H, W]`` images."""

    def __init__(self, images: torch.Tensor, batch_size: int, device, *, flip: bool = True,
                 seed: int = 0, channels_last: bool = False):
        n = images.shape[0]
        if batch_size > n:
            raise ValueError(
                f"batch size {batch_size} is larger than the training set ({n} images); "
                "lower --batch-size or use more images"
            )
        self.device = torch.device(device)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.memory_format = memory_format
        self.images = images.to(self.device).contiguous(memory_format=memory_format)
        self.batch_size = batch_size
        self.flip = flip
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long, device=self.device)
        self._pos = 0

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        if self._pos + self.batch_size > self._order.numel():
            n = self.images.shape[0]
            self._order = torch.randperm(n, device=self.device, generator=self.generator)
            self._pos = 0
        index = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        x = self.images[index].float().div_(127.5).sub_(1.0)
        if self.flip:
            flip = torch.rand(len(index), device=self.device, generator=self.generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x.contiguous(memory_format=self.memory_format)  # a no-op unless an op changed it

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self._order.cpu(), "pos": self._pos}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"].cpu())
        self._order = state["order"].to(self.device)
        self._pos = int(state["pos"])
