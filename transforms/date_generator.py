"""Synthetic training data for a date-normalisation seq2seq model.

Each example pairs a human-written date ("April 22, 2019", "22/04/2019",
"Posted on Mon, 22 Apr 2019 10:49 +0200", ...) with its ISO-8601 form ("2019-04-22"),
and says which day order its numeric dates follow (``day_first``).

* A share ``real_world_rate`` of examples is written in one of the real-world form
  families of :mod:`~seqbeam.transforms.date_real_world` (times of day, zones, ISO
  timestamps, compact digits, two-digit years, weekdays, dotted abbreviations, ordinals,
  year-first words, log/mail/API timestamps, sentences); the rest in the 18 classic
  formats of :mod:`~seqbeam.transforms.date_forms`.
* A minority of clean examples vary in case ("APRIL 22, 2019") and spacing
  ("April  22, 2019 "); they are still clean because no character is wrong.
* A configurable share is corrupted with one or two realistic typing/OCR noise
  operations (:mod:`~seqbeam.transforms.date_noise`), which never destroy the
  information needed to recover the date, so the target is always the intended date.

Classic examples draw their dates uniformly between ``start`` and ``end``; real-world
ones mostly from the years records hold (three in four from 1950-2049, the window of
two-digit years; most of the rest from 1800-2199), within the same bounds.

Standard library only, deterministic from a seed, English month and day names.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
from collections.abc import Iterator

from seqbeam.transforms.date_forms import (  # noqa: F401  (re-exported: the generator's public names)
    FORMATS,
    MONTHS,
    TWO_DIGIT_YEAR_PIVOT,
    TWO_DIGIT_YEARS,
    WEEKDAYS,
    full_year,
    ordinal,
    render,
)
from seqbeam.transforms.date_noise import add_noise, normalise
from seqbeam.transforms.date_real_world import (
    FAMILY_WEIGHTS,
    MAX_CHARS,
    REAL_WORLD_FORMS,
    SHORT_YEAR_FAMILIES,
    render_real_world,
)

# Every form an example may be written in: the classic formats, then the real-world families.
ALL_FORMS: tuple[str, ...] = FORMATS + REAL_WORLD_FORMS

_CASE_VARIATION_RATE = 0.1  # each of lowercase and UPPERCASE
_SPACING_VARIATION_RATE = 0.1
# Real-world dates: (share, first year, last year), the rest uniform between start and end.
_REAL_WORLD_YEARS = ((0.75, 1950, 2049), (0.2, 1800, 2199))


@dataclasses.dataclass(frozen=True)
class DateExample:
    """One training pair: a human-written date and its ISO target.

    Attributes:
        raw: the date as a human (or OCR) wrote it, the model input.
        iso: the intended date as 'YYYY-MM-DD', the model target.
        format: the form ``raw`` was rendered in: one of FORMATS (classic) or
            REAL_WORLD_FORMS (a real-world family).
        noisy: True when noise operations corrupted ``raw``; case and spacing
            variations alone leave it False.
        day_first: the day order of the row's numeric dates (True: 03/04/2019 is
            3 April), which the model is told as its control token.
    """

    raw: str
    iso: str
    format: str
    noisy: bool
    day_first: bool = False


def generate_dates(
    n: int,
    seed: int,
    *,
    day_first: bool | None = False,
    noise_rate: float = 0.1,
    real_world_rate: float = 0.0,
    start: datetime.date = datetime.date(1000, 1, 1),
    end: datetime.date = datetime.date(9999, 12, 31),
) -> Iterator[DateExample]:
    """Yield ``n`` DateExamples, deterministic from ``seed``.

    ``day_first``: the order of every row (True / False), or None for each row's own,
    drawn half and half. A share ``real_world_rate`` of rows is in a real-world family
    (drawn by :data:`~seqbeam.transforms.date_real_world.FAMILY_WEIGHTS`), the others in
    a classic format (uniform over FORMATS); a share ``noise_rate`` of examples gets
    noise. Arguments are validated eagerly (ValueError), examples are made lazily.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= noise_rate <= 1:
        raise ValueError(f"noise_rate must be between 0 and 1, got {noise_rate}")
    if not 0 <= real_world_rate <= 1:
        raise ValueError(f"real_world_rate must be between 0 and 1, got {real_world_rate}")
    if start > end:
        raise ValueError(f"start ({start}) must not be after end ({end})")
    if day_first not in (True, False, None):
        raise ValueError(f"day_first must be True, False or None (both orders), got {day_first!r}")
    return _generate(n, random.Random(seed), day_first, noise_rate, real_world_rate, start, end)


def _uniform_date(rng: random.Random, start: datetime.date, end: datetime.date) -> datetime.date:
    return datetime.date.fromordinal(rng.randint(start.toordinal(), end.toordinal()))


def _real_world_date(rng: random.Random, start: datetime.date, end: datetime.date) -> datetime.date:
    """A date from the years records hold, within ``start``..``end``."""
    draw = rng.random()
    for share, first, last in _REAL_WORLD_YEARS:
        if draw < share:
            low, high = max(start, datetime.date(first, 1, 1)), min(end, datetime.date(last, 12, 31))
            if low <= high:
                return _uniform_date(rng, low, high)
            break
        draw -= share
    return _uniform_date(rng, start, end)


def _generate(
    n: int,
    rng: random.Random,
    day_first: bool | None,
    noise_rate: float,
    real_world_rate: float,
    start: datetime.date,
    end: datetime.date,
) -> Iterator[DateExample]:
    families, weights = list(FAMILY_WEIGHTS), list(FAMILY_WEIGHTS.values())
    short_low, short_high = max(start, TWO_DIGIT_YEARS[0]), min(end, TWO_DIGIT_YEARS[1])
    for _ in range(n):
        order = rng.random() < 0.5 if day_first is None else day_first
        if real_world_rate and rng.random() < real_world_rate:
            fmt = rng.choices(families, weights=weights)[0]
            if fmt in SHORT_YEAR_FAMILIES and short_low > short_high:
                fmt = "time_of_day"  # no date of the range has a two-digit year
            if fmt in SHORT_YEAR_FAMILIES:
                date = _uniform_date(rng, short_low, short_high)
            else:
                date = _real_world_date(rng, start, end)
            text = render_real_world(date, fmt, day_first=order, rng=rng)
        else:
            date = _uniform_date(rng, start, end)
            fmt = rng.choice(FORMATS)
            text = render(date, fmt, day_first=order)
        raw = _vary_case(text, rng)
        noisy = rng.random() < noise_rate
        if noisy:
            raw = add_noise(raw, date.month, rng)
        if rng.random() < _SPACING_VARIATION_RATE:
            raw = _vary_spacing(raw, rng)
        yield DateExample(raw=raw, iso=date.isoformat(), format=fmt, noisy=noisy, day_first=order)


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


__all__ = ["ALL_FORMS", "DateExample", "FORMATS", "MAX_CHARS", "MONTHS", "REAL_WORLD_FORMS", "TWO_DIGIT_YEAR_PIVOT",
           "WEEKDAYS", "full_year", "generate_dates", "normalise", "ordinal", "render"]
