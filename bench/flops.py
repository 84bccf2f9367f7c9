"""Training FLOPs of one step, counted with ``torch.utils.flop_counter``'s formulas.

``FlopCounterMode`` itself tracks modules with autograd hooks that break
``torch.autograd.grad`` on leaf tensors (gradient penalties, R1), so we apply
its per-operator formulas (``flop_registry``) in a dispatch mode of our own
that tracks nothing else. Forward and backward passes are both counted.
"""

from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


class CountFlops(TorchDispatchMode):
    """``with CountFlops() as c: ...`` then ``c.total``: matmul/conv FLOPs executed inside."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out
