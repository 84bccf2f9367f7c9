"""Datasets: every split is one ``uint8 [N, 3, H, W]`` tensor, loaded once.

A dataset plugin registers ``loader(request) -> Dataset``; see ``builtin.py``.
"""

from bench.data.dataset import (
    Dataset,
    DatasetError,
    DatasetRequest,
    ImageSet,
    open_dataset,
    parse_dataset_spec,
)

__all__ = ["Dataset", "DatasetError", "DatasetRequest", "ImageSet", "open_dataset", "parse_dataset_spec"]
