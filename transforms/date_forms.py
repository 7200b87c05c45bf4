"""The words and numbers dates are written with, and the 18 classic formats.

The classic formats ("September 20, 7075", "20-Sep-7075", "09/20/7075", ...) are the
project's first generator's; :mod:`seqbeam.transforms.date_real_world` builds the forms
real records hold (times, zones, two-digit years, sentences, ...) from the pieces here.

Standard library only, English month and day names.
"""

from __future__ import annotations

import datetime
import random
import types
from collections.abc import Callable, Mapping, Sequence

MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
WEEKDAYS: tuple[str, ...] = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
)
# Associated Press abbreviations: March to July are never shortened.
AP_MONTHS: tuple[str, ...] = (
    "Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec.",
)
# Longer weekday abbreviations in common use (Monday=0); the others have only their three letters.
LONG_WEEKDAY_ABBREVIATIONS: Mapping[int, str] = types.MappingProxyType({1: "Tues", 2: "Weds", 3: "Thurs"})

# Two-digit years (RFC 5322 section 4.3, X.509 UTCTime): 00-49 are 2000-2049, 50-99 are 1950-1999.
TWO_DIGIT_YEAR_PIVOT = 50
# The dates a two-digit year can stand for.
TWO_DIGIT_YEARS = (datetime.date(1900 + TWO_DIGIT_YEAR_PIVOT, 1, 1), datetime.date(1999 + TWO_DIGIT_YEAR_PIVOT, 12, 31))


def full_year(two_digits: int) -> int:
    """The year a two-digit year stands for under :data:`TWO_DIGIT_YEAR_PIVOT` (``96`` -> 1996, ``03`` -> 2003)."""
    if not 0 <= two_digits <= 99:
        raise ValueError(f"a two-digit year lies in 0..99, got {two_digits}")
    return (1900 if two_digits >= TWO_DIGIT_YEAR_PIVOT else 2000) + two_digits


def ordinal(number: int) -> str:
    """Return ``number`` with its English ordinal suffix: 1st, 2nd, 11th, 22nd, ..."""
    if 11 <= number % 100 <= 13:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    """One of the names of ``weighted`` ``(name, weight)`` pairs, drawn by weight."""
    return rng.choices([name for name, _ in weighted], weights=[w for _, w in weighted])[0]


def _year(date: datetime.date) -> str:
    return f"{date.year:04d}"


def _month(date: datetime.date) -> str:
    return MONTHS[date.month - 1]


def _mon(date: datetime.date) -> str:
    return _month(date)[:3]


def _weekday(date: datetime.date) -> str:
    return WEEKDAYS[date.weekday()]


# Month word styles: "September", "Sep", "Sep.", AP style ("Sept.", "March"), "Sept" (September only).
MONTH_STYLES: tuple[tuple[str, float], ...] = (("full", 0.45), ("abbr", 0.35), ("abbr_dot", 0.08), ("ap", 0.08),
                                               ("sept", 0.04))
DOTTED_MONTH_STYLES: tuple[tuple[str, float], ...] = (("abbr_dot", 0.45), ("ap", 0.45), ("sept", 0.1))


def month_word(date: datetime.date, style: str) -> str:
    """The month of ``date`` in one of the :data:`MONTH_STYLES`."""
    name = MONTHS[date.month - 1]
    if style == "full":
        return name
    if style == "abbr":
        return name[:3]
    if style == "abbr_dot":
        return name[:3] + "." if len(name) > 3 else name
    if style == "ap":
        return AP_MONTHS[date.month - 1]
    if style == "sept":
        return "Sept" if date.month == 9 else name[:3]
    raise ValueError(f"unknown month style {style!r}")


# Weekday word styles: "Thursday", "Thu", "Thu.", "Thurs" (Tuesday, Wednesday, Thursday; else "Thu").
WEEKDAY_STYLES: tuple[tuple[str, float], ...] = (("full", 0.45), ("abbr", 0.4), ("abbr_dot", 0.08), ("long", 0.07))


def weekday_word(date: datetime.date, style: str) -> str:
    """The weekday of ``date`` in one of the :data:`WEEKDAY_STYLES`."""
    name = WEEKDAYS[date.weekday()]
    if style == "full":
        return name
    if style == "abbr":
        return name[:3]
    if style == "abbr_dot":
        return name[:3] + "."
    if style == "long":
        return LONG_WEEKDAY_ABBREVIATIONS.get(date.weekday(), name[:3])
    raise ValueError(f"unknown weekday style {style!r}")


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

# The 18 classic formats.
FORMATS: tuple[str, ...] = tuple(_RENDERERS)


def render(date: datetime.date, format: str, *, day_first: bool = False) -> str:
    """Render ``date`` in the clean classic format named ``format`` (one of FORMATS).

    ``day_first`` only matters for the ``numeric_*`` formats: True gives
    DD/MM/YYYY, False gives MM/DD/YYYY.  Useful on its own to show or test
    what each format looks like.
    """
    try:
        renderer = _RENDERERS[format]
    except KeyError:
        raise ValueError(f"format: unknown format {format!r}; expected one of {FORMATS}") from None
    return renderer(date, day_first)


# --- pieces of the real-world forms ---------------------------------------------------------

# Share of numeric dates whose day (over 12) is written in the other order than the row's.
_UNAMBIGUOUS_SWAP_RATE = 0.1
# Share of numeric dates with spaces between their numbers ("09 25 2003").
_SPACED_NUMERIC_RATE = 0.04


def short_year_ok(date: datetime.date) -> bool:
    """True when a two-digit year can write ``date``'s year (:data:`TWO_DIGIT_YEARS`)."""
    return TWO_DIGIT_YEARS[0] <= date <= TWO_DIGIT_YEARS[1]


def numeric(date: datetime.date, day_first: bool, rng: random.Random, *, two_digit_year: bool = False,
            separators: str = "/-.") -> str:
    """Day and month as numbers in the row's order (a day over 12 sometimes the other way), then the year."""
    padding = pick(rng, (("both", 0.5), ("none", 0.3), ("day", 0.1), ("month", 0.1)))
    day = f"{date.day:02d}" if padding in ("both", "day") else str(date.day)
    month = f"{date.month:02d}" if padding in ("both", "month") else str(date.month)
    if date.day > 12 and rng.random() < _UNAMBIGUOUS_SWAP_RATE:
        day_first = not day_first
    year = f"{date.year % 100:02d}" if two_digit_year else f"{date.year:04d}"
    separator = " " if rng.random() < _SPACED_NUMERIC_RATE else rng.choice(separators)
    return separator.join((day, month, year) if day_first else (month, day, year))


def year_first(date: datetime.date, rng: random.Random) -> str:
    """``2003-09-25``, ``2003/09/25``, ``2003.09.25``; sometimes unpadded (``2003/9/25``)."""
    separator = pick(rng, (("-", 0.6), ("/", 0.23), (".", 0.14), (" ", 0.03)))
    if rng.random() < 0.1:
        return f"{date.year:04d}{separator}{date.month}{separator}{date.day}"
    return f"{date.year:04d}{separator}{date.month:02d}{separator}{date.day:02d}"
