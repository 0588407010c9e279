"""Variant options: each one's type and range, checked before anything is built or written.

A variant declares its options once, beside its defaults:

    defaults = dict(z_dim=100, arch="dcgan", lr=2e-4, levels=3, ...)
    limits = dict(levels=">= 1")          # only what COMMON (below) does not already say

An option's type is its default's: bool, int, float, str, or a tuple of ints (layer widths).
A limit is written as `tinygan variants -v` shows it: ">= 1", "> 0", "[0, 1)" (an interval,
brackets closed, parentheses open), or a tuple of the allowed strings.  A default of None
(e.g. lapgan's lr0: "unset, use lr") needs a limit that starts with the type: "float > 0".

Values come from Python (`config={"lr": 1e-4}`) or from the command line as text
(`--set lr=1e-4`); both go through `Option.check`, which returns the value in its type
or raises a ValueError that names the option, what it got and what it takes:
    ints     whole numbers only: 3, not 2.5 (nor True)
    floats   any finite number: 0.5, 1e-4, 2
    bools    true, false, 1 or 0 (any case): not "yes"
    tuples   512,512 or [512, 512] (or one int: one layer)
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

# Ranges of the names most variants share, so a variant's own `limits` stay short.
COMMON = dict(z_dim=">= 1", ngf=">= 1", ndf=">= 1", toy_hidden=">= 1", toy_layers=">= 1",
              hidden=">= 1", d_hidden=">= 1", lr="> 0", beta1="[0, 1)", beta2="[0, 1)", n_critic=">= 1",
              gp_weight=">= 0", arch=("mlp", "dcgan"), likelihood=("auto", "bernoulli", "gaussian"))

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TYPES = {bool: "bool", int: "int", float: "float", str: "str", tuple: "ints"}
_BOOLS = {"true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class Option:
    name: str
    kind: str                     # "bool", "int", "float", "str", "choice" or "ints"
    bounds: str = ""              # ">= 1", "> 0", "[0, 1)" or "" (any value of the type)
    choices: tuple = ()           # kind "choice": the allowed strings
    optional: bool = False        # None is allowed (the default is None)

    @classmethod
    def of(cls, name: str, default, limit=None) -> "Option":
        """The option `name` with this default and limit (see the module docstring)."""
        if isinstance(limit, tuple):
            return cls(name, "choice", choices=limit)
        limit = (limit or "").strip()
        kind = limit.split(" ", 1)[0]
        if kind in _TYPES.values():
            limit = limit[len(kind):].strip()
        elif default is None:
            raise TypeError(f"option {name}: a default of None needs a limit naming the type")
        else:
            kind = _TYPES[type(default)] if type(default) in _TYPES else "str"
        opt = cls(name, kind, limit, optional=default is None)
        opt._interval()                          # a malformed limit fails at import, not later
        return opt

    # -- the range ---------------------------------------------------------------------------
    def _interval(self):
        """(low, low_closed, high, high_closed); None for an open end."""
        b = self.bounds
        if not b:
            return None, False, None, False
        m = re.fullmatch(rf"(>=|>|<=|<)\s*({_NUM})", b)
        if m:
            op, x = m.group(1), float(m.group(2))
            return (x, op == ">=", None, False) if op[0] == ">" else (None, False, x, op == "<=")
        m = re.fullmatch(rf"([\[(])\s*({_NUM})\s*,\s*({_NUM})\s*([\])])", b)
        if m:
            return float(m.group(2)), m.group(1) == "[", float(m.group(3)), m.group(4) == "]"
        raise ValueError(f"option {self.name}: cannot read the limit {b!r}")

    def _in_range(self, x) -> bool:
        low, low_closed, high, high_closed = self._interval()
        return ((low is None or x > low or (low_closed and x == low))
                and (high is None or x < high or (high_closed and x == high)))

    # -- how it reads ------------------------------------------------------------------------
    def describe(self) -> str:
        """Type and range as `tinygan variants -v` prints them: "int >= 1", "float in [0, 1)"."""
        if self.kind == "choice":
            text = " | ".join(self.choices)
        elif self.kind == "bool":
            text = "bool (true/false/1/0)"
        else:
            rng = self.bounds if not self.bounds or self.bounds[0] in "<>" else f"in {self.bounds}"
            text = " ".join(s for s in (self.kind, rng) if s)
            if self.kind == "ints":
                text += ", comma-separated"
        return text + (" or none" if self.optional else "")

    def _wants(self) -> str:
        """What it takes, for error messages: "an int >= 1", "one of 'mlp', 'dcgan'"."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false (or 1 or 0)"
        if self.kind == "ints":
            return f"comma-separated ints {self.bounds}, like 512,512".rstrip()
        return ("an " if self.kind == "int" else "a ") + self.describe()

    # -- the check ---------------------------------------------------------------------------
    def check(self, value):
        """`value` (Python, or text from --set) in this option's type; ValueError if it is not one."""
        bad = ValueError(f"option {self.name} takes {self._wants()}, got {value!r}")
        if self.optional and (value is None or (isinstance(value, str)
                                                and value.strip().lower() in ("none", "null"))):
            return None
        if self.kind in ("choice", "str"):
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise bad
            return value
        if self.kind == "bool":
            key = value.strip().lower() if isinstance(value, str) else value
            if isinstance(key, str) and key in _BOOLS:
                return _BOOLS[key]
            if isinstance(key, (bool, numbers.Integral)) and key in (0, 1):
                return bool(key)
            raise bad
        if self.kind == "ints":
            items = value
            if isinstance(value, str):
                items = value.strip().strip("[]()").split(",")
            elif isinstance(value, numbers.Integral):
                items = [value]
            if not isinstance(items, (list, tuple)) or not items:
                raise bad
            try:
                return tuple(self._number(v, int) for v in items)
            except ValueError:
                raise bad from None
        try:
            return self._number(value, int if self.kind == "int" else float)
        except ValueError:
            raise bad from None

    def _number(self, value, typ):
        """One int or finite float in range, from a number or its text; ValueError otherwise."""
        if isinstance(value, str):
            value = typ(value.strip())           # int("2.5") fails, as it should
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError
        if typ is int and not isinstance(value, numbers.Integral):
            raise ValueError
        value = typ(value)
        if not math.isfinite(value) or not self._in_range(value):
            raise ValueError
        return value


def options_of(defaults: dict, limits: dict) -> dict:
    """{name: Option} for a variant's defaults, its limits, and COMMON's for shared names."""
    return {k: Option.of(k, v, limits.get(k, COMMON.get(k))) for k, v in defaults.items()}
