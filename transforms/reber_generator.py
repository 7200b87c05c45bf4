"""Embedded Reber grammar strings for a sequence-classification toy task.

The Reber grammar is a small finite automaton over "BEPSTVX"; the embedded
variant wraps a Reber string as 'B' + ('T' reber 'T' | 'P' reber 'P') + 'E', so
a classifier must remember the second symbol until the second-to-last one (the
long-range dependency exercise of Hands-On Machine Learning, ch. 15/16).
Negatives are grammatical strings with exactly one character replaced, which
makes them hard to tell apart.

Standard library only and deterministic from a seed.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

ALPHABET = "BEPSTVX"

_ACCEPT = 7
# _TRANSITIONS[state] lists the (symbol, next state) pairs leaving that state.
_TRANSITIONS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("B", 1),),
    (("T", 2), ("P", 3)),
    (("S", 2), ("X", 4)),
    (("T", 3), ("V", 5)),
    (("X", 3), ("S", 6)),
    (("P", 4), ("V", 6)),
    (("E", _ACCEPT),),
)


@dataclasses.dataclass(frozen=True)
class ReberExample:
    """One labelled string: ``label`` is 1 if ``text`` is embedded-Reber, else 0."""

    text: str
    label: int


def is_reber(s: str) -> bool:
    """True if ``s`` is accepted by the (plain) Reber automaton."""
    state = 0
    for symbol in s:
        if state == _ACCEPT:
            return False
        next_state = dict(_TRANSITIONS[state]).get(symbol)
        if next_state is None:
            return False
        state = next_state
    return state == _ACCEPT


def is_embedded_reber(s: str) -> bool:
    """True if ``s`` is 'B' + ('T' reber 'T' | 'P' reber 'P') + 'E'."""
    return (
        len(s) >= 4
        and s[0] == "B"
        and s[-1] == "E"
        and s[1] in "TP"
        and s[-2] == s[1]
        and is_reber(s[2:-2])
    )


def sample_reber(rng: random.Random) -> str:
    """Walk the Reber automaton from its start, taking transitions uniformly at random."""
    symbols, state = [], 0
    while state != _ACCEPT:
        symbol, state = rng.choice(_TRANSITIONS[state])
        symbols.append(symbol)
    return "".join(symbols)


def generate_embedded_reber(rng: random.Random) -> str:
    """Return a random embedded-Reber string, the wrapper symbol chosen uniformly."""
    wrapper = rng.choice("TP")
    return "B" + wrapper + sample_reber(rng) + wrapper + "E"


def corrupt(s: str, rng: random.Random) -> str:
    """Replace exactly one character of ``s`` by another ALPHABET symbol so the result is not embedded-Reber.

    Draws (position, symbol) uniformly and retries until the result is
    ungrammatical; this always ends because corrupting the leading 'B' of any
    candidate already breaks the grammar.
    """
    if not s:
        raise ValueError("s must be a non-empty string")
    while True:
        i = rng.randrange(len(s))
        symbol = rng.choice([c for c in ALPHABET if c != s[i]])
        corrupted = s[:i] + symbol + s[i + 1:]
        if not is_embedded_reber(corrupted):
            return corrupted


def generate_reber(n: int, seed: int) -> Iterator[ReberExample]:
    """Yield ``n`` labelled examples deterministic from ``seed``, exactly ``n // 2`` grammatical.

    Examples come in pairs of one grammatical string and one corruption of a
    fresh grammatical string, in random order within the pair, so labels are
    balanced in every prefix but not predictable from position.  For odd ``n``
    the last example is a corruption.  ``n`` is validated eagerly (ValueError).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return _generate(n, random.Random(seed))


def _generate(n: int, rng: random.Random) -> Iterator[ReberExample]:
    positive_first = False
    for i in range(n):
        if i % 2 == 0:
            positive_first = i + 1 < n and rng.random() < 0.5
        if (i % 2 == 0) == positive_first:
            yield ReberExample(generate_embedded_reber(rng), 1)
        else:
            yield ReberExample(corrupt(generate_embedded_reber(rng), rng), 0)
