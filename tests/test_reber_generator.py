"""Tests for the embedded Reber grammar generator."""

from __future__ import annotations

import random

import pytest

from seqbeam.transforms.reber_generator import (
    ALPHABET,
    ReberExample,
    corrupt,
    generate_embedded_reber,
    generate_reber,
    is_embedded_reber,
    is_reber,
    sample_reber,
)


@pytest.fixture(scope="module")
def examples() -> list[ReberExample]:
    return list(generate_reber(2000, seed=4))


def _one_substitution_from_grammatical(s: str) -> bool:
    return any(
        is_embedded_reber(s[:i] + c + s[i + 1:])
        for i in range(len(s))
        for c in ALPHABET
        if c != s[i]
    )


@pytest.mark.parametrize("s", ["BTXSE", "BPVVE", "BTSSXXVVE", "BPVPXVPXVPXVVE", "BTXXVPSE", "BPTVPSE", "BPTTTVPXTVPXVPSE"])
def test_known_reber_strings(s: str) -> None:
    assert is_reber(s)


@pytest.mark.parametrize("s", ["", "B", "BE", "BTSSPXSE", "BPTTTVPXTVPXVPE", "TXSE", "BTXS", "BTXSEE", "BTXSEB"])
def test_known_non_reber_strings(s: str) -> None:
    assert not is_reber(s)


@pytest.mark.parametrize("s", ["BTBTXSETE", "BPBPVVEPE", "BTBPVPXVPXVPSETE", "BPBTSSXXVVEPE"])
def test_known_embedded_reber_strings(s: str) -> None:
    assert is_embedded_reber(s)


@pytest.mark.parametrize(
    "s",
    [
        "BTBTXSEPE",  # wrapper symbols disagree
        "BPBPVVETE",
        "BTBTXSETB",  # wrong final symbol
        "TTBTXSETE",  # wrong first symbol
        "BTBTXXETE",  # inner string not Reber
        "BTXSE",  # plain Reber, not embedded
        "BXBTXSEXE",  # wrapper must be T or P
        "",
    ],
)
def test_known_non_embedded_reber_strings(s: str) -> None:
    assert not is_embedded_reber(s)


def test_sampled_strings_are_grammatical() -> None:
    rng = random.Random(0)
    for _ in range(500):
        assert is_reber(sample_reber(rng))
        s = generate_embedded_reber(rng)
        assert is_embedded_reber(s)
        assert set(s) <= set(ALPHABET)


def test_both_wrappers_and_both_branches_occur() -> None:
    rng = random.Random(1)
    strings = [generate_embedded_reber(rng) for _ in range(400)]
    assert {s[1] for s in strings} == {"T", "P"}
    assert {s[3] for s in strings} == {"T", "P"}


def test_corrupt_changes_exactly_one_character() -> None:
    rng = random.Random(2)
    for _ in range(500):
        s = generate_embedded_reber(rng)
        bad = corrupt(s, rng)
        assert len(bad) == len(s)
        assert sum(a != b for a, b in zip(s, bad)) == 1
        assert set(bad) <= set(ALPHABET)
        assert not is_embedded_reber(bad)


def test_corrupt_rejects_empty_string() -> None:
    with pytest.raises(ValueError):
        corrupt("", random.Random(0))


def test_generated_examples_are_labelled_correctly(examples: list[ReberExample]) -> None:
    for example in examples:
        assert set(example.text) <= set(ALPHABET)
        if example.label == 1:
            assert is_embedded_reber(example.text), example
        else:
            assert example.label == 0
            assert not is_embedded_reber(example.text), example
            assert _one_substitution_from_grammatical(example.text), example


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 11, 1000])
def test_labels_are_balanced(n: int) -> None:
    labels = [e.label for e in generate_reber(n, seed=n)]
    assert len(labels) == n
    assert sum(labels) == n // 2


def test_labels_are_balanced_per_pair_but_not_alternating(examples: list[ReberExample]) -> None:
    labels = [e.label for e in examples]
    pairs = [labels[i:i + 2] for i in range(0, len(labels), 2)]
    assert all(sorted(pair) == [0, 1] for pair in pairs)
    assert {tuple(pair) for pair in pairs} == {(0, 1), (1, 0)}


def test_deterministic_for_a_seed() -> None:
    assert list(generate_reber(300, seed=8)) == list(generate_reber(300, seed=8))
    assert list(generate_reber(300, seed=8)) != list(generate_reber(300, seed=9))


def test_rejects_negative_n_eagerly() -> None:
    with pytest.raises(ValueError, match="n"):
        generate_reber(-1, seed=0)
