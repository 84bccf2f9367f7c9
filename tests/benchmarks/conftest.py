"""Kernel benchmarks (pytest-benchmark), outside the default test run:

    pytest tests/benchmarks --benchmark-only --benchmark-enable \
        --benchmark-storage=results/benchmarks --benchmark-autosave
    pytest tests/benchmarks --benchmark-only --benchmark-enable \
        --benchmark-storage=results/benchmarks --benchmark-compare   # against the last save

(or `tox -e bench`). Real-data benchmarks read BENCH_DATA_DIR and BENCH_FID_WEIGHTS.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' conftest helpers
