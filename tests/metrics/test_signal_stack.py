"""bench.metrics.signal_stack: the guard that puts back the signal stack OpenVINO's compiler replaces."""

from __future__ import annotations

import os

import pytest
from helpers import requires_weights

import bench.metrics.inception_openvino as openvino_module


def test_kept_signal_stack_puts_back_a_stack_a_library_replaced():
    """What OpenVINO's CPU plugin does on compile (installs its own alternate signal stack) is
    undone on leaving the guard; a body that changes nothing is left alone."""
    import ctypes

    from bench.metrics.signal_stack import current_signal_stack, kept_signal_stack, set_signal_stack

    before = current_signal_stack()
    if before is None:
        pytest.skip("no sigaltstack on this platform")
    theirs = ctypes.create_string_buffer(64 * 1024)
    try:
        with kept_signal_stack():
            set_signal_stack(ctypes.addressof(theirs), len(theirs))
            assert current_signal_stack()[:2] == (ctypes.addressof(theirs), len(theirs))
        assert current_signal_stack() == before
        with kept_signal_stack():
            pass
        assert current_signal_stack() == before
    finally:
        set_signal_stack(*before)


OPENVINO_THEN_SIGNAL = """
import faulthandler, gc, signal, subprocess, sys
import torch
from bench.metrics.features import extract_features
from bench.metrics.inception import load_feature_extractor
from bench.metrics.signal_stack import current_signal_stack

faulthandler.enable()  # gives the main thread an alternate signal stack, as pytest does
torch.set_num_threads(2)  # 3 images go out as parts of 2 and 1: two compiled sizes
before = current_signal_stack()
network = load_feature_extractor(sys.argv[1], backend="openvino")
images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
assert extract_features(images, network).shape == (3, 2048)
# two compiled models (batch, height, width), destroyed below in creation order
assert sorted(network._compiled) == [(1, 32, 32), (2, 32, 32)]
del network
gc.collect()
assert current_signal_stack() == before, (current_signal_stack(), before)
signal.signal(signal.SIGCHLD, lambda *_: None)  # Python's handlers run on the alternate stack
subprocess.run(["true"], check=True)  # its exit raises SIGCHLD here
print("survived")
"""


@pytest.mark.slow
@requires_weights
@pytest.mark.skipif(not openvino_module.openvino_available(), reason="OpenVINO is not installed")
def test_openvino_leaves_the_signal_stack_so_a_later_signal_is_handled():
    """Two compiled sizes destroyed in creation order used to leave the main thread's alternate
    signal stack pointing at freed memory: the next SIGCHLD (a child process exiting, with
    DataLoader's handler installed) killed the process with SIGSEGV. In a subprocess, so that a
    regression cannot take the test run down with it."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", OPENVINO_THEN_SIGNAL, os.environ["BENCH_FID_WEIGHTS"]],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip().endswith("survived")
