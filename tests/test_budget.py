import pytest

from bench.budget import BudgetError, parse_budget


@pytest.mark.parametrize(
    "text, kind, amount",
    [
        ("90s", "seconds", 90),
        ("10m", "seconds", 600),
        ("1.5min", "seconds", 90),
        ("2h", "seconds", 7200),
        ("5000steps", "steps", 5000),
        ("1step", "steps", 1),
        ("5ksteps", "steps", 5000),
        ("2Mimg", "images", 2e6),
        ("500kimg", "images", 5e5),
        ("3PFLOP", "flops", 3e15),
        ("500TFLOPs", "flops", 5e14),
    ],
)
def test_accepted_forms(text, kind, amount):
    budget = parse_budget(text)
    assert (budget.kind, budget.amount) == (kind, amount)


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "10x", "-5s", "0steps", "2.5steps", "3kh", "1e3s"])
def test_malformed_budget_lists_accepted_forms(text):
    with pytest.raises(BudgetError) as err:
        parse_budget(text)
    assert "'90s'" in str(err.value) or "whole number" in str(err.value)


def test_exhaustion_and_fraction():
    budget = parse_budget("100steps")
    usage = {"steps": 50, "images": 0, "seconds": 0.0, "flops": 0.0}
    assert not budget.exhausted(usage) and budget.fraction(usage) == 0.5
    usage["steps"] = 100
    assert budget.exhausted(usage)
