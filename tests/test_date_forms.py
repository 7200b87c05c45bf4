"""The real-world date forms: every generated string parses back to its target with a strict parser.

The reference parser below is written for this test, apart from the generator: it takes
away what is not the date (times of day, zones, weekdays, ids and amounts), then needs
exactly one reading of exactly one date in what is left, with no digit and no month name
outside it. It reads numeric dates in the row's order unless a number over 12 says
otherwise, two-digit years by RFC 5322 (00-49: 2000s, 50-99: 1900s), checks ordinal
suffixes, clock values, offsets, the calendar and every weekday named.
"""

from __future__ import annotations

import collections
import datetime
import random
import re

import pytest

from seqbeam.transforms.date_generator import (
    ALL_FORMS,
    FORMATS,
    MAX_CHARS,
    REAL_WORLD_FORMS,
    full_year,
    generate_dates,
)
from seqbeam.transforms.date_noise import add_noise, edit_distance, normalise
from seqbeam.transforms.postprocess import check_date

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_WORDS = {**{w: i for i, w in enumerate(_WEEKDAYS)}, **{w[:3]: i for i, w in enumerate(_WEEKDAYS)},
                  "tues": 1, "weds": 2, "thur": 3, "thurs": 3}
_ZONES = ("utc", "gmt", "ut", "est", "edt", "cst", "cdt", "mst", "mdt", "pst", "pdt", "akst", "hst", "bst", "cet",
          "cest", "eet", "eest", "wet", "west", "msk", "ist", "pkt", "sgt", "hkt", "jst", "kst", "aest", "aedt", "nzst",
          "brt", "brst", "art")
_ZONE_NAME = r"\((?:[a-z]+ ){1,3}time\)|\(utc\)|\b(?:[a-z]+ ){1,3}time\b"
_ZONE_ID = r"\b(?:america|europe|asia|australia)/[a-z_]+\b"

_MONTH = r"(?<![a-z])(?P<month>" + "|".join(sorted({*_MONTHS, *(m[:3] for m in _MONTHS), "sept"}, key=len,
                                                   reverse=True)) + r")\.?(?![a-z])"
_DAY = r"(?<![\d#$])(?P<day>\d{1,2})(?P<suffix>st|nd|rd|th)?(?![\d])"
_YEAR = r"(?P<apostrophe>['\u2019])?(?P<year>\d{4}|\d{2})(?![\d])"
_CLOCK = r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,]\d{1,9})?)?(?:\s?(?P<ampm>am|pm|a\.m\.|p\.m\.))?"
_AMPM_ONLY = r"(?P<h>\d{1,2})\s?(?P<ampm>am|pm|a\.m\.|p\.m\.)"

# (name, pattern) of what is not the date, taken away in this order.
_NOT_DATE = (
    ("iso_time", r"(?<=\d)t\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:z|[+-]\d{2}:?\d{2})?(?![\d:])"),
    ("after_year_time", r"(?<=\d{4}):\d{2}:\d{2}:\d{2}(?!\d)"),
    ("file_time", r"(?<=\d)_\d{6}(?=\.)"),
    ("oracle_time", r"(?<![\d.])\d{2}\.\d{2}\.\d{2}\.\d{6}\s(?:am|pm)(?![a-z])"),
    ("clock", r"(?<![\d.:/-])" + _CLOCK + r"(?!\d|:\d|[a-z])"),
    ("ampm", r"(?<![\d.:/-])" + _AMPM_ONLY + r"(?![a-z])"),
    ("words", r"\b(?:12 )?(?:noon|midnight)\b"),
    ("french", r"(?<![\d])\d{1,2}h\d{2}(?![\d])"),
    ("hrs", r"(?<![\d])\d{4} hrs\b"),
    ("offset", r"(?:(?<=\s)|(?<=\u00a7)|^)(?:gmt|utc)?[+-]\d{2}:?\d{2}(?![\d:])"),
    ("gmt_offset", r"\b(?:gmt|utc)[+-]\d{1,2}(?::00)?(?![\d:])"),
    ("zone_name", _ZONE_NAME),
    ("zone_id", _ZONE_ID),
    ("zone", r"\b(?:" + "|".join(_ZONES) + r")\b"),
    ("weekday", r"(?<![a-z])(?P<weekday>" + "|".join(sorted(_WEEKDAY_WORDS, key=len, reverse=True)) + r")\.?(?![a-z])"),
    ("id", r"#\d+"),
    ("log_line", r"\b\d{1,3}(?:\.\d{1,3}){3}\b|http/\d\.\d\"|(?<=\") \d{3} \d+$|\[\d+\]"),
    ("amount", r"\$\d+\.\d{2}"),
)
_DATES = (
    ("numeric", r"(?<![\d.:/-])(?P<a>\d{1,2})(?P<sep>[/. -])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})(?![\d])"),
    ("year_first", r"(?<![\d])(?P<year>\d{4})(?P<sep>[/. -])(?P<month_number>\d{1,2})(?P=sep)(?P<day>\d{1,2})(?![\d])"),
    ("compact", r"(?<![\d])(?P<year>\d{4})(?P<month_number>\d{2})(?P<day>\d{2})(?:[t_-]?(?P<clock>\d{6}|\d{4}))?"
                r"(?:\.\d)?(?:z|[+-]\d{4})?(?![\d])"),
    ("mdy", _MONTH + r"\s*[-/]?\s*" + _DAY + r"(?:\s*,)?[\s\u00a7,]*[-/]?\s*" + _YEAR),
    ("month_the_day", _MONTH + r"\s+the\s+" + _DAY + r",?\s+" + _YEAR),
    ("dmy", _DAY + r"\.?\s*(?:day\s+)?(?:of\s+)?[-/.]?\s*" + _MONTH + r"\s*,?\s*[-/.]?\s*(?:of\s+)?" + _YEAR),
    ("ymd_words", r"(?<![\d])(?P<year>\d{4})\s*[-/.,]?\s*" + _MONTH + r"\s*[-/.]?\s*" + _DAY),
)


def _ordinal_suffix(day: int) -> str:
    return "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _check_clock(match: re.Match) -> None:
    groups = match.groupdict()
    if groups.get("h") is None:
        return
    hour, minute = int(groups["h"]), int(groups.get("m") or 0)
    second = int(groups.get("s") or 0)
    if groups.get("ampm"):
        assert 1 <= hour <= 12, match.group()
    assert hour <= 23 and minute <= 59 and second <= 59, match.group()


def _year_of(match: re.Match) -> int:
    year = match.group("year")
    if len(year) == 4:
        assert not match.groupdict().get("apostrophe"), match.group()
        return int(year)
    return (2000 if int(year) < 50 else 1900) + int(year)


def _reading(name: str, match: re.Match, day_first: bool) -> tuple[int, int, int]:
    """(year, month, day) of one date match; AssertionError when it is no date."""
    groups = match.groupdict()
    if name == "numeric":
        a, b = int(groups["a"]), int(groups["b"])
        if a > 12:
            day, month = a, b
        elif b > 12:
            month, day = a, b
        else:
            day, month = (a, b) if day_first else (b, a)
    else:
        day = int(groups["day"])
        month = int(groups["month_number"]) if groups.get("month_number") else next(
            i for i, m in enumerate(_MONTHS, 1) if m.startswith(groups["month"][:3]))
        if groups.get("month") and len(groups["month"]) > 3:
            assert groups["month"] in _MONTHS or groups["month"] == "sept", match.group()
        if groups.get("suffix"):
            assert groups["suffix"] == _ordinal_suffix(day), match.group()
        clock = groups.get("clock")
        if clock:
            assert int(clock[:2]) <= 23 and int(clock[2:4]) <= 59 and int(clock[4:] or 0) <= 59, match.group()
    return _year_of(match), month, day


def reference_parse(text: str, day_first: bool) -> str:
    """The ISO date ``text`` writes, read strictly; AssertionError when it does not write exactly one."""
    rest = " ".join(text.lower().split())
    weekdays = set()
    for name, pattern in _NOT_DATE:
        def take(match: re.Match) -> str:
            _check_clock(match)
            if name == "weekday":
                weekdays.add(_WEEKDAY_WORDS[match.group("weekday")])
            return " \u00a7 "
        rest = re.sub(pattern, take, rest)
    readings, spans = set(), []
    for name, pattern in _DATES:
        for match in re.finditer(pattern, rest):
            readings.add(_reading(name, match, day_first))
            spans.append(match.span())
    assert len(readings) == 1, f"{text!r}: {len(readings)} readings {sorted(readings)} in {rest!r}"
    outside = "".join(c for i, c in enumerate(rest) if not any(start <= i < end for start, end in spans))
    assert not re.search(r"\d", outside), f"{text!r}: digits outside the date in {outside!r}"
    assert not re.search(_MONTH, outside), f"{text!r}: a month outside the date in {outside!r}"
    date = datetime.date(*readings.pop())
    assert weekdays <= {date.weekday()}, f"{text!r}: weekdays {weekdays} but {date} is a {date.weekday()}"
    return date.isoformat()


@pytest.fixture(scope="module")
def real_world():
    return list(generate_dates(12_000, seed=21, day_first=None, noise_rate=0.0, real_world_rate=1.0))


def test_every_real_world_form_appears_in_both_orders(real_world):
    counts = collections.Counter((row.format, row.day_first) for row in real_world)
    assert {fmt for fmt, _ in counts} == set(REAL_WORLD_FORMS)
    assert min(counts.values()) > 100, counts
    assert set(ALL_FORMS) == set(FORMATS) | set(REAL_WORLD_FORMS)


def test_every_real_world_string_parses_back_to_its_target(real_world):
    for row in real_world:
        assert reference_parse(row.raw, row.day_first) == row.iso, row


def test_every_classic_string_parses_back_to_its_target():
    for row in generate_dates(3000, seed=22, day_first=None, noise_rate=0.0):
        assert reference_parse(row.raw, row.day_first) == row.iso, row


def test_the_parser_is_strict():
    for text, day_first in (("25/09/2003 and 26/09/2003", False), ("2003-02-30", False), ("Sep 25th, 2003 and 7", False),
                            ("Wed, 25 Sep 2003", False), ("25 Septembre 2003", False), ("Sep 21th, 2003", True),
                            ("25/09/2003 25:10", False), ("in May: 25/09/2003", False)):
        with pytest.raises((AssertionError, ValueError)):  # ValueError: no calendar date
            reference_parse(text, day_first)
    assert reference_parse("03/04/2019", day_first=False) == "2019-03-04"
    assert reference_parse("03/04/2019", day_first=True) == "2019-04-03"
    assert reference_parse("Thu, 25 Sep 2003 10:49:41 -0300", day_first=False) == "2003-09-25"


def test_strings_stay_short_and_free_of_line_breaks(real_world):
    for row in real_world:
        assert 0 < len(row.raw.strip()) and len(row.raw) <= MAX_CHARS + 4, row
        assert not re.search(r"[\t\r\n]", row.raw), row


@pytest.mark.parametrize("two, year", [(0, 2000), (3, 2003), (49, 2049), (50, 1950), (96, 1996), (99, 1999)])
def test_two_digit_years_follow_the_rfc_5322_pivot(two, year):
    assert full_year(two) == year


def test_two_digit_year_rows_are_dates_of_the_pivot_window(real_world):
    rows = [row for row in real_world if row.format == "two_digit_year"]
    assert len(rows) > 300
    assert all(1950 <= int(row.iso[:4]) <= 2049 for row in rows)
    assert any("'" in row.raw or "\u2019" in row.raw for row in rows)


def test_numeric_dates_follow_the_row_order_unless_a_day_over_12_says_otherwise():
    numeric = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}")
    for day_first, first in ((True, 3), (False, 4)):
        date = datetime.date(2019, 4, 3)
        rows = [(r, numeric.fullmatch(r.raw.strip())) for r in generate_dates(
            3000, seed=5, day_first=day_first, noise_rate=0, real_world_rate=1.0, start=date, end=date)]
        leading = {int(m.group(1)) for _, m in rows if m}
        assert leading == {first}, leading
    late = datetime.date(2019, 4, 25)
    rows = [r for r in generate_dates(3000, seed=6, day_first=False, noise_rate=0, real_world_rate=1.0,
                                      start=late, end=late) if numeric.fullmatch(r.raw.strip())]
    leading = {int(numeric.fullmatch(r.raw.strip()).group(1)) for r in rows}
    assert leading == {4, 25}  # mostly month first; sometimes day first, which reads one way only
    assert all(reference_parse(r.raw, False) == "2019-04-25" for r in rows)


def test_every_real_world_input_passes_the_weekday_check_with_its_true_date(real_world):
    for row in real_world:
        assert check_date(row.iso, row.raw) == (row.iso, True, None), row
    named = [r for r in real_world if r.format == "weekday"]
    wrong = [(datetime.date.fromisoformat(r.iso) + datetime.timedelta(days=1)).isoformat() for r in named]
    assert all(check_date(w, r.raw).flag.startswith("weekday_mismatch") for w, r in zip(wrong, named))


def test_noise_changes_every_real_world_form_a_little(real_world):
    rng = random.Random(3)
    for row in real_world[:3000]:
        noisy = add_noise(row.raw, int(row.iso[5:7]), rng)
        assert normalise(noisy) != normalise(row.raw), row
        assert edit_distance(normalise(noisy), normalise(row.raw)) <= 7, (noisy, row)
