"""bench: train GAN, VAE and hybrid variants under one fixed budget and compare them.

A plugin needs only::

    from bench import hookimpl, Variant
"""

from bench.hookspecs import hookimpl
from bench.variant import Variant

__version__ = "0.1.0"
__all__ = ["hookimpl", "Variant", "__version__"]
