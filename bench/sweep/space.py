"""Moved to ``bench.space`` (plugins import its names from ``bench``); kept so that plugins
written for bench 0.2 (``from bench.sweep.space import LUCIC_SHARED``) still load."""

from bench.space import *  # noqa: F403 (every public name, re-exported)
