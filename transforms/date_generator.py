"""Synthetic training data for a date-normalisation seq2seq model.

Each example pairs a human-written date ("April 22, 2019", "22/04/2019",
"the 22nd of April, 2019", ...) with its ISO-8601 form ("2019-04-22").

* A minority of clean examples vary in case ("APRIL 22, 2019") and spacing
  ("April  22, 2019 "); they are still clean because no character is wrong.
* A configurable share is corrupted with one or two realistic typing/OCR noise
  operations.  Noise never destroys the information needed to recover the date
  (no digit becomes another digit, no two digit groups are glued together, a
  misspelt month stays closest to the true month), so the target is always the
  intended date.

Standard library only, deterministic from a seed, English month and day names.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import types
from collections.abc import Callable, Iterator, Mapping

MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
WEEKDAYS: tuple[str, ...] = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
)

_CASE_VARIATION_RATE = 0.1  # each of lowercase and UPPERCASE
_SPACING_VARIATION_RATE = 0.1
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
_CALENDAR_WORDS: frozenset[str] = frozenset(
    word.lower() for name in MONTHS + WEEKDAYS for word in (name, name[:3])
)


@dataclasses.dataclass(frozen=True)
class DateExample:
    """One training pair: a human-written date and its ISO target.

    Attributes:
        raw: the date as a human (or OCR) wrote it, the model input.
        iso: the intended date as 'YYYY-MM-DD', the model target.
        format: the clean format ``raw`` was rendered in (one of FORMATS).
        noisy: True when noise operations corrupted ``raw``; case and spacing
            variations alone leave it False.
    """

    raw: str
    iso: str
    format: str
    noisy: bool


def ordinal(number: int) -> str:
    """Return ``number`` with its English ordinal suffix: 1st, 2nd, 11th, 22nd, ..."""
    if 11 <= number % 100 <= 13:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _year(date: datetime.date) -> str:
    return f"{date.year:04d}"


def _month(date: datetime.date) -> str:
    return MONTHS[date.month - 1]


def _mon(date: datetime.date) -> str:
    return _month(date)[:3]


def _weekday(date: datetime.date) -> str:
    return WEEKDAYS[date.weekday()]


def _numeric(date: datetime.date, separator: str, padded: bool, day_first: bool) -> str:
    """Day and month as numbers in the order set by ``day_first``, then the year."""
    day, month = (f"{date.day:02d}", f"{date.month:02d}") if padded else (str(date.day), str(date.month))
    first, second = (day, month) if day_first else (month, day)
    return separator.join((first, second, _year(date)))


_Renderer = Callable[[datetime.date, bool], str]
_RENDERERS: Mapping[str, _Renderer] = types.MappingProxyType({
    "month_day_year": lambda d, _: f"{_month(d)} {d.day}, {_year(d)}",
    "mon_day_year": lambda d, _: f"{_mon(d)} {d.day}, {_year(d)}",
    "day_month_year": lambda d, _: f"{d.day} {_month(d)} {_year(d)}",
    "day_mon_year": lambda d, _: f"{d.day} {_mon(d)} {_year(d)}",
    "month_ordinal_year": lambda d, _: f"{_month(d)} {ordinal(d.day)}, {_year(d)}",
    "ordinal_of_month_year": lambda d, _: f"the {ordinal(d.day)} of {_month(d)}, {_year(d)}",
    "weekday_month_day_year": lambda d, _: f"{_weekday(d)}, {_month(d)} {d.day}, {_year(d)}",
    "wkd_day_mon_year": lambda d, _: f"{_weekday(d)[:3]}, {d.day} {_mon(d)} {_year(d)}",
    "day_mon_year_dashed": lambda d, _: f"{d.day:02d}-{_mon(d)}-{_year(d)}",
    "iso": lambda d, _: f"{_year(d)}-{d.month:02d}-{d.day:02d}",
    "ymd_slash": lambda d, _: f"{_year(d)}/{d.month:02d}/{d.day:02d}",
    "ymd_dot": lambda d, _: f"{_year(d)}.{d.month:02d}.{d.day:02d}",
    "numeric_slash": lambda d, day_first: _numeric(d, "/", True, day_first),
    "numeric_dash": lambda d, day_first: _numeric(d, "-", True, day_first),
    "numeric_dot": lambda d, day_first: _numeric(d, ".", True, day_first),
    "numeric_slash_unpadded": lambda d, day_first: _numeric(d, "/", False, day_first),
    "numeric_dash_unpadded": lambda d, day_first: _numeric(d, "-", False, day_first),
    "numeric_dot_unpadded": lambda d, day_first: _numeric(d, ".", False, day_first),
})

FORMATS: tuple[str, ...] = tuple(_RENDERERS)


def render(date: datetime.date, format: str, *, day_first: bool = False) -> str:
    """Render ``date`` in the clean format named ``format`` (one of FORMATS).

    ``day_first`` only matters for the ``numeric_*`` formats: True gives
    DD/MM/YYYY, False gives MM/DD/YYYY.  Useful on its own to show or test
    what each format looks like.
    """
    try:
        renderer = _RENDERERS[format]
    except KeyError:
        raise ValueError(f"format: unknown format {format!r}; expected one of {FORMATS}") from None
    return renderer(date, day_first)


def generate_dates(
    n: int,
    seed: int,
    *,
    day_first: bool = False,
    noise_rate: float = 0.1,
    start: datetime.date = datetime.date(1000, 1, 1),
    end: datetime.date = datetime.date(9999, 12, 31),
) -> Iterator[DateExample]:
    """Yield ``n`` DateExamples, deterministic from ``seed``.

    Dates are uniform between ``start`` and ``end`` inclusive and formats
    uniform over FORMATS; a share ``noise_rate`` of examples gets noise.
    Arguments are validated eagerly (ValueError), examples are made lazily.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= noise_rate <= 1:
        raise ValueError(f"noise_rate must be between 0 and 1, got {noise_rate}")
    if start > end:
        raise ValueError(f"start ({start}) must not be after end ({end})")
    return _generate(n, random.Random(seed), day_first, noise_rate, start, end)


def _generate(
    n: int,
    rng: random.Random,
    day_first: bool,
    noise_rate: float,
    start: datetime.date,
    end: datetime.date,
) -> Iterator[DateExample]:
    for _ in range(n):
        date = datetime.date.fromordinal(rng.randint(start.toordinal(), end.toordinal()))
        fmt = rng.choice(FORMATS)
        raw = _vary_case(render(date, fmt, day_first=day_first), rng)
        noisy = rng.random() < noise_rate
        if noisy:
            raw = _add_noise(raw, date.month, rng)
        if rng.random() < _SPACING_VARIATION_RATE:
            raw = _vary_spacing(raw, rng)
        yield DateExample(raw=raw, iso=date.isoformat(), format=fmt, noisy=noisy)


def _vary_case(text: str, rng: random.Random) -> str:
    """Lowercase or uppercase a minority of renderings."""
    draw = rng.random()
    if draw < _CASE_VARIATION_RATE:
        return text.lower()
    if draw < 2 * _CASE_VARIATION_RATE:
        return text.upper()
    return text


def _vary_spacing(text: str, rng: random.Random) -> str:
    """Add leading/trailing spaces or double an existing space."""
    kinds = ("leading", "trailing", "both") + (("double",) if " " in text else ())
    kind = rng.choice(kinds)
    if kind == "double":
        i = rng.choice([i for i, char in enumerate(text) if char == " "])
        return text[:i] + " " + text[i:]
    lead = " " * rng.randint(1, 2) if kind in ("leading", "both") else ""
    trail = " " * rng.randint(1, 2) if kind in ("trailing", "both") else ""
    return lead + text + trail


def normalise(text: str) -> str:
    """Lowercase and collapse whitespace: undoes exactly the clean variations.

    For a clean example ``normalise(raw) == normalise(render(...))``; for a
    noisy one they differ.
    """
    return " ".join(text.split()).lower()


# --- noise ----------------------------------------------------------------
# Each operation returns the corrupted text, or None when it does not apply.
# Every operation that applies changes normalise(text), so noise is never a
# mere case/spacing variation.

_NoiseOp = Callable[[str, int, random.Random], str | None]


def _find_month(text: str, month: int) -> int:
    """Index of the full month name in ``text`` (any case), or -1."""
    return text.lower().find(MONTHS[month - 1].lower())


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
    if typo in _CALENDAR_WORDS:
        return False
    distances = [_edit_distance(typo, name.lower()) for name in MONTHS]
    own = distances.pop(month - 1)
    return all(own < other for other in distances)


def _edit_distance(a: str, b: str) -> int:
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
    """Delete one space that does not separate two numbers."""
    candidates = [i for i, c in enumerate(text) if c == " " and not _joins_digits(text, i)]
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


def _ocr_confusion(text: str, month: int, rng: random.Random) -> str | None:
    """Swap one character for its OCR look-alike (0/O, 1/l/I, 5/S, 8/B, 2/Z)."""
    candidates = [i for i, c in enumerate(text) if c in _OCR_CONFUSIONS]
    if not candidates:
        return None
    i = rng.choice(candidates)
    return text[:i] + rng.choice(_OCR_CONFUSIONS[text[i]]) + text[i + 1:]


_NOISE_OPS: tuple[_NoiseOp, ...] = (
    _misspell_month,
    _truncate_month,
    _drop_punctuation,
    _double_punctuation,
    _drop_space,
    _stray_space,
    _ocr_confusion,
)


def _add_noise(text: str, month: int, rng: random.Random) -> str:
    """Apply one or two distinct noise operations so that the text really changes.

    Every rendering admits at least one operation (each has a space or a
    punctuation mark), and a single operation always changes the normalised
    text, so the loop only repeats when two operations cancel out.
    """
    wanted = 2 if rng.random() < _TWO_NOISE_OPS_RATE else 1
    while True:
        noisy, applied = text, 0
        for op in rng.sample(_NOISE_OPS, len(_NOISE_OPS)):
            if applied == wanted:
                break
            result = op(noisy, month, rng)
            if result is not None:
                noisy, applied = result, applied + 1
        if normalise(noisy) != normalise(text):
            return noisy
