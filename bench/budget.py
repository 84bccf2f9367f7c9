"""Training budgets: wall-clock time, steps, images seen or training FLOPs."""

from __future__ import annotations

import dataclasses
import re

ACCEPTED_FORMS = (
    "wall-clock training time '90s', '10m', '2h'; steps '5000steps'; "
    "images seen '2Mimg', '500kimg'; training FLOPs '3PFLOP', '500TFLOP'"
)
_PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_UNITS = {  # unit -> (kind, scale, takes a metric prefix)
    "s": ("seconds", 1.0, False),
    "m": ("seconds", 60.0, False),
    "min": ("seconds", 60.0, False),
    "h": ("seconds", 3600.0, False),
    "step": ("steps", 1.0, True),
    "steps": ("steps", 1.0, True),
    "img": ("images", 1.0, True),
    "FLOP": ("flops", 1.0, True),
    "FLOPs": ("flops", 1.0, True),
}
_PATTERN = re.compile(
    r"^(?P<number>\d+(?:\.\d+)?)(?P<prefix>[kMGTPE]?)(?P<unit>steps?|img|FLOPs?|min|s|m|h)$"
)


class BudgetError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Budget:
    kind: str  # "seconds" | "steps" | "images" | "flops"
    amount: float
    text: str

    def used(self, usage: dict) -> float:
        return float(usage[self.kind])

    def fraction(self, usage: dict) -> float:
        return min(1.0, self.used(usage) / self.amount)

    def exhausted(self, usage: dict) -> bool:
        return self.used(usage) >= self.amount

    def as_dict(self) -> dict:
        return {"text": self.text, "kind": self.kind, "amount": self.amount}


def parse_budget(text: str) -> Budget:
    match = _PATTERN.match(str(text).strip())
    if not match:
        raise BudgetError(f"cannot read budget {text!r}; accepted forms: {ACCEPTED_FORMS}")
    kind, scale, prefixable = _UNITS[match["unit"]]
    if match["prefix"] and not prefixable:
        raise BudgetError(
            f"budget {text!r}: a time takes no metric prefix; accepted forms: {ACCEPTED_FORMS}"
        )
    amount = float(match["number"]) * _PREFIX[match["prefix"]] * scale
    if amount <= 0:
        raise BudgetError(f"budget {text!r} must be positive; accepted forms: {ACCEPTED_FORMS}")
    if kind == "steps" and not amount.is_integer():
        raise BudgetError(f"budget {text!r}: steps must be a whole number")
    return Budget(kind, amount, str(text).strip())
