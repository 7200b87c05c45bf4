"""Typing and OCR noise for generated dates, that never destroys the date.

One or two operations per noisy string: a typo in the month name or in another word
(dropped, doubled, swapped or neighbouring-key letter), a truncated month, dropped,
doubled or stray punctuation and spaces, an OCR look-alike (0/O, 1/l/I, 5/S, 8/B, 2/Z).
No digit becomes another digit, no two digit groups are glued together, a misspelt month
stays closest to the true month and no word becomes another calendar word, so the target
is always the intended date.

Standard library only.
"""

from __future__ import annotations

import random
import re
import types
from collections.abc import Callable, Mapping

from seqbeam.transforms.date_forms import MONTHS, WEEKDAYS

_TWO_NOISE_OPS_RATE = 0.3
_MAX_TYPO_TRIES = 20
_PUNCTUATION = ",./-"
_OCR_CONFUSIONS: Mapping[str, str] = types.MappingProxyType({
    "0": "O", "O": "0", "o": "0",
    "1": "lI", "l": "1", "I": "1",
    "5": "S", "S": "5", "s": "5",
    "8": "B", "B": "8",
    "2": "Z", "Z": "2", "z": "2",
})
_KEYBOARD_NEIGHBOURS: Mapping[str, str] = types.MappingProxyType({
    "q": "wa", "w": "qeas", "e": "wrds", "r": "etdf", "t": "ryfg", "y": "tugh",
    "u": "yihj", "i": "uojk", "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedxz",
    "d": "serfcx", "f": "drtgvc", "g": "ftyhbv", "h": "gyujnb", "j": "huikmn",
    "k": "jiolm", "l": "kop", "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb",
    "b": "vghn", "n": "bhjm", "m": "njk",
})
CALENDAR_WORDS: frozenset[str] = frozenset(
    {word.lower() for name in MONTHS + WEEKDAYS for word in (name, name[:3])}
    | {"sept", "tues", "weds", "thur", "thurs"}
)
_LETTERS = re.compile(r"[A-Za-z]{4,}")


def normalise(text: str) -> str:
    """Lowercase and collapse whitespace: undoes exactly the clean variations.

    For a clean example ``normalise(raw) == normalise(render(...))``; for a
    noisy one they differ.
    """
    return " ".join(text.split()).lower()


# Each operation returns the corrupted text, or None when it does not apply.
# Every operation that applies changes normalise(text), so noise is never a
# mere case/spacing variation.

_NoiseOp = Callable[[str, int, random.Random], "str | None"]


def _find_month(text: str, month: int) -> int:
    """Index of the full month name as a word in ``text`` (any case), or -1."""
    match = re.search(rf"(?i)\b{MONTHS[month - 1]}\b", text)
    return match.start() if match else -1


def _misspell_month(text: str, month: int, rng: random.Random) -> str | None:
    """One typo in a full month name of at least 4 letters."""
    name = MONTHS[month - 1]
    at = _find_month(text, month)
    if at < 0 or len(name) < 4:
        return None
    word = text[at:at + len(name)]
    for _ in range(_MAX_TYPO_TRIES):
        typo = _typo(word, rng)
        if _recognisable_as(typo, month):
            return text[:at] + typo + text[at + len(name):]
    return None


def _typo(word: str, rng: random.Random) -> str:
    """Drop, double, swap or keyboard-replace one letter, never the first."""
    i = rng.randrange(1, len(word))
    kind = rng.choice(("drop", "double", "swap", "neighbour"))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    neighbour = rng.choice(_KEYBOARD_NEIGHBOURS[word[i].lower()])
    return word[:i] + (neighbour.upper() if word[i].isupper() else neighbour) + word[i + 1:]


def _recognisable_as(typo: str, month: int) -> bool:
    """True if ``typo`` is no real calendar word and is nearest to ``month``'s name."""
    typo = typo.lower()
    if typo in CALENDAR_WORDS:
        return False
    distances = [edit_distance(typo, name.lower()) for name in MONTHS]
    own = distances.pop(month - 1)
    return all(own < other for other in distances)


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (Levenshtein plus adjacent swaps)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def _month_like(word: str) -> bool:
    """True for a word that may name a month: a month name, or a prefix of one ("Septem")."""
    word = word.lower()
    return any(name.lower().startswith(word) for name in MONTHS)


def _typo_in_word(text: str, month: int, rng: random.Random) -> str | None:
    """One typo in a word of 4+ letters that names no month (a weekday, a word around the date)."""
    words = [m for m in _LETTERS.finditer(text) if not _month_like(m.group())]
    if not words:
        return None
    match = rng.choice(words)
    for _ in range(_MAX_TYPO_TRIES):
        typo = _typo(match.group(), rng)
        if typo.lower() not in CALENDAR_WORDS and not _month_like(typo):
            return text[:match.start()] + typo + text[match.end():]
    return None


def _truncate_month(text: str, month: int, rng: random.Random) -> str | None:
    """Cut a full month name to a prefix of 4+ letters ("Septem"); such prefixes are unique."""
    name = MONTHS[month - 1]
    at = _find_month(text, month)
    if at < 0 or len(name) < 5:
        return None
    keep = rng.randint(4, len(name) - 1)
    return text[:at + keep] + text[at + len(name):]


def _digit_like(char: str) -> bool:
    """A digit, or a letter that OCR noise may have put in place of one."""
    return char.isdigit() or char in _OCR_CONFUSIONS


def _joins_digits(text: str, i: int) -> bool:
    """True if deleting ``text[i]`` would glue two (possibly OCR-mangled) numbers together."""
    return 0 < i < len(text) - 1 and _digit_like(text[i - 1]) and _digit_like(text[i + 1])


def _drop_punctuation(text: str, month: int, rng: random.Random) -> str | None:
    """Delete one punctuation mark that does not separate two numbers."""
    candidates = [i for i, c in enumerate(text) if c in _PUNCTUATION and not _joins_digits(text, i)]
    if not candidates:
        return None
    i = rng.choice(candidates)
    return text[:i] + text[i + 1:]


def _double_punctuation(text: str, month: int, rng: random.Random) -> str | None:
    """Repeat one punctuation mark ("20,, 2019", "20//04/2019")."""
    candidates = [i for i, c in enumerate(text) if c in _PUNCTUATION]
    if not candidates:
        return None
    i = rng.choice(candidates)
    return text[:i] + text[i] + text[i:]


def _drop_space(text: str, month: int, rng: random.Random) -> str | None:
    """Delete one space between two words that does not separate two numbers."""
    candidates = [i for i, c in enumerate(text) if c == " " and 0 < i < len(text) - 1
                  and " " not in (text[i - 1], text[i + 1]) and not _joins_digits(text, i)]
    if not candidates:
        return None
    i = rng.choice(candidates)
    return text[:i] + text[i + 1:]


def _stray_space(text: str, month: int, rng: random.Random) -> str | None:
    """Insert a space next to a punctuation mark ("20 /04/2019", "April 22 , 2019").

    Doubling an existing space is a clean spacing variation, not noise.
    """
    candidates = [
        i for i in range(1, len(text))
        if " " not in text[i - 1:i + 1] and (text[i - 1] in _PUNCTUATION or text[i] in _PUNCTUATION)
    ]
    if not candidates:
        return None
    i = rng.choice(candidates)
    return text[:i] + " " + text[i:]


def _stray_punctuation(text: str, month: int, rng: random.Random) -> str | None:
    """Put a comma or a dot at the end of a word or of the text ("7. 7 66", "Sep 25 2003,")."""
    ends = [i for i in range(1, len(text) + 1) if text[i - 1] != " " and (i == len(text) or text[i] == " ")]
    if not ends:
        return None
    i = rng.choice(ends)
    return text[:i] + rng.choice(",.") + text[i:]


def _ocr_confusion(text: str, month: int, rng: random.Random) -> str | None:
    """Swap one character for its OCR look-alike (0/O, 1/l/I, 5/S, 8/B, 2/Z)."""
    candidates = [i for i, c in enumerate(text) if c in _OCR_CONFUSIONS]
    if not candidates:
        return None
    i = rng.choice(candidates)
    return text[:i] + rng.choice(_OCR_CONFUSIONS[text[i]]) + text[i + 1:]


NOISE_OPS: tuple[_NoiseOp, ...] = (
    _misspell_month,
    _truncate_month,
    _typo_in_word,
    _drop_punctuation,
    _double_punctuation,
    _drop_space,
    _stray_space,
    _stray_punctuation,
    _ocr_confusion,
)


def add_noise(text: str, month: int, rng: random.Random) -> str:
    """Apply one or two distinct noise operations so that the text really changes.

    Every rendering admits at least one operation (a stray comma or dot at the end of a
    word always applies), and a single operation always changes the normalised text, so
    the loop only repeats when two operations cancel out.
    """
    wanted = 2 if rng.random() < _TWO_NOISE_OPS_RATE else 1
    while True:
        noisy, applied = text, 0
        for op in rng.sample(NOISE_OPS, len(NOISE_OPS)):
            if applied == wanted:
                break
            result = op(noisy, month, rng)
            if result is not None:
                noisy, applied = result, applied + 1
        if normalise(noisy) != normalise(text):
            return noisy
