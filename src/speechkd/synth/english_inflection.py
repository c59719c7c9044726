"""Regular English verb inflection, shared by the read-speech grammar and the en-de grammar."""
from __future__ import annotations

# consonant doubling before -ed/-ing (stop -> stopped, stopping) for the verbs the grammars use
_DOUBLE_FINAL = frozenset({"stop", "shop", "swim", "run", "get", "begin", "sit", "drop", "plan", "hug", "wrap"})


def _consonant_y(base: str) -> bool:
    return base.endswith("y") and base[-2] not in "aeiou"


def third_singular(base: str) -> str:
    if base.endswith(("s", "sh", "ch", "x", "o")):
        return base + "es"
    return base[:-1] + "ies" if _consonant_y(base) else base + "s"


def regular_past(base: str) -> str:
    if base.endswith("e"):
        return base + "d"
    if _consonant_y(base):
        return base[:-1] + "ied"
    return base + base[-1] + "ed" if base in _DOUBLE_FINAL else base + "ed"


def present_participle(base: str) -> str:
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")) and base != "be":
        return base[:-1] + "ing"
    return base + base[-1] + "ing" if base in _DOUBLE_FINAL else base + "ing"
