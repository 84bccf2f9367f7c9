"""The variant contract as checks: what every registered variant must do, importable by anyone.

Every built-in, and every variant a third party registers, passes the same checks without a line
of test code of its own:

    pytest --pyargs bench.testing            # every variant registered in this environment
    pytest --pyargs bench.testing -k my-gan  # one of them

or, inside a plugin's own tests, on a class that is not installed::

    from bench.testing import check_variant
    check_variant(MyGAN)

The checks build small networks on 32x32 synthetic images (``small_config``), so all of them
take about a second per variant on a CPU. ``bench/testing/test_contract.py`` is the pytest
module; it runs them on every registered backbone a variant can build on
(``check_variant(MyGAN, backbone="resnet")`` for one), and bench's own test suite runs it over
the built-ins.
"""

from bench.testing.contract import (
    CONTRACT_CHECKS,
    check_checkpoint_round_trip,
    check_class,
    check_ema,
    check_one_step,
    check_resume,
    check_sampling,
    check_variant,
    make_variant,
    small_config,
    synthetic_batch,
)

__all__ = [
    "CONTRACT_CHECKS",
    "check_checkpoint_round_trip",
    "check_class",
    "check_ema",
    "check_one_step",
    "check_resume",
    "check_sampling",
    "check_variant",
    "make_variant",
    "small_config",
    "synthetic_batch",
]
