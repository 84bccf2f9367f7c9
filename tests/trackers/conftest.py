"""The trackers' tests' fixtures: one tracked, killed and resumed run (``tracked_run.py``), made
once; and no matrix-product peak measurement (MFU's denominator is not what they test), the
cache of real ones left as it is."""

from __future__ import annotations

import pytest


def constant_peaks(device, dtype=None, **_):
    return {"matmul": 1e11}, "constant (test)"


@pytest.fixture(autouse=True)
def no_peak_measurement(monkeypatch):
    import bench.run

    monkeypatch.setattr(bench.run, "cached_peaks", constant_peaks)


@pytest.fixture(scope="session")
def tracked_run(tmp_path_factory):
    from tracked_run import tracked_run

    import bench.run

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.run, "cached_peaks", constant_peaks)
        return tracked_run(tmp_path_factory.mktemp("tracked"))
