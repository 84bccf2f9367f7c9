"""Short names for a sweep's settings: ``gan#3`` is the setting of gan's third search sample,
``gan#best`` the one the search chose (the final phase's seeds ran it too), so that a report of
24 settings says ``gan#3`` where it would spell ``beta1=0.5581343000015276, lr=1.22e-05``; one
table (``settings_rows``) gives each id's values to 3 significant digits."""

from __future__ import annotations

import json

from bench.report.format import show
from bench.store.sweep import SEARCH


def _key(options: dict) -> str:
    return json.dumps(options, sort_keys=True, default=str)


def setting_ids(state: dict) -> dict[str, str]:
    """Trial name -> setting id, for every slot of a sweep state (``bench.store.sweep``)."""
    chosen = {m: _key(c["options"]) for m, c in state.get("chosen", {}).items() if c.get("trial")}
    numbers: dict[tuple[str, str], int] = {}
    for slot in state["slots"]:
        if slot["phase"] == SEARCH:
            numbers.setdefault((slot["model"], _key(slot["options"])), slot["index"] + 1)
    ids = {}
    for slot in state["slots"]:
        model, key = slot["model"], _key(slot["options"])
        if chosen.get(model) == key:
            ids[slot["trial"]] = f"{model}#best"
        else:  # a search sample, or a final seed of a best that --add-samples replaced
            ids[slot["trial"]] = f"{model}#{numbers.get((model, key), '?')}"
    return ids


def value_text(value) -> str:
    """A setting's value to 3 significant digits (what a search over log-uniform ranges resolves)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return show(value)


def setting_text(options: dict) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in sorted(options.items())) or "defaults"


def settings_rows(state: dict) -> list[tuple[str, str, dict]]:
    """(model, setting id, options) of every search sample, in the sweep's order."""
    ids = setting_ids(state)
    return [(s["model"], ids[s["trial"]], s["options"]) for s in state["slots"] if s["phase"] == SEARCH]
