"""Short setting ids: the chosen setting is #best, the others their search sample number."""

from __future__ import annotations

from bench.report.settings import setting_ids, setting_text, settings_rows


def state(chosen_index=1):
    options = [{"lr": 0.0001234567, "beta1": 0.5581343000015276}, {"lr": 2e-4, "beta1": 0.5}, {"lr": 1e-3}]
    slots = [{"model": "gan", "phase": "search", "index": i, "options": o, "seed": 0, "trial": f"gan-{i}-s0"}
             for i, o in enumerate(options)]
    slots += [{"model": "gan", "phase": "final", "index": i, "options": options[0], "seed": 1 + i,
               "trial": f"gan-0-s{1 + i}", "superseded": True} for i in range(2)]  # an earlier best
    slots += [{"model": "gan", "phase": "final", "index": 2 + i, "options": options[chosen_index],
               "seed": 1 + i, "trial": f"gan-{chosen_index}-s{1 + i}"} for i in range(2)]
    chosen = {"trial": f"gan-{chosen_index}-s0", "options": options[chosen_index], "value": 50.0}
    return {"slots": slots, "chosen": {"gan": chosen}}


def test_the_chosen_setting_is_best_and_an_earlier_best_keeps_its_sample_number():
    ids = setting_ids(state())
    assert ids["gan-1-s0"] == ids["gan-1-s1"] == ids["gan-1-s2"] == "gan#best"
    assert ids["gan-0-s0"] == ids["gan-0-s1"] == "gan#1"  # the superseded finals ran sample 1's setting
    assert ids["gan-2-s0"] == "gan#3"


def test_values_are_shown_to_3_significant_digits():
    assert setting_text({"lr": 0.0001234567, "beta1": 0.5581343000015276}) == "beta1=0.558, lr=0.000123"
    assert setting_text({}) == "defaults"
    assert [sid for _, sid, _ in settings_rows(state())] == ["gan#1", "gan#best", "gan#3"]
