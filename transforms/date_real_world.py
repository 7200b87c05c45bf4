"""Dates as real records write them: the real-world form families of the date generator.

Each family names what its strings have that the 18 classic formats lack; a string drawn
for a family always has it, and may have what other families add:

=================  ==========================================================================
family             examples (2003-09-25, a Thursday)
=================  ==========================================================================
time_of_day        "September 25, 2003 at 10:49 AM", "25.09.2003 14:30", "0:01:02 on 9/25/2003"
time_zone          "Sep 25, 2003 10:49:41 PM EST", "25/09/2003 10:49 +02:00", "2003-09-25 10:49 UTC"
iso_timestamp      "2003-09-25T10:49:41Z", "2003-09-25T10:49:41.502+02:00", "2003-09-25 10:49:41,502"
compact            "20030925", "20030925T104941Z", "20030925104941"
two_digit_year     "09/25/03", "25-SEP-03", "Sep 25 '03", "Thu, Sept. 25, '03"
weekday            "Thu Sep 25 2003", "25 September 2003 (Thursday)", "Thurs., Sept. 25, 2003"
abbreviation       "Sept. 25, 2003", "25 Sept. 2003", "Sep. 25th 2003"
ordinal            "25th September 2003", "September the 25th, 2003", "25th of Sep, 2003"
year_first_words   "2003 Sep 25", "2003-Sep-25", "2003, September 25th"
machine            "Thu Sep 25 10:36:28 2003", "[25/Sep/2003:10:49:41 -0300]", "Thu, 25 Sep 2003 10:49:41
                   GMT", "Thu Sep 25 2003 10:49:41 GMT-0300 (Brasilia Standard Time)", "25-SEP-03
                   10.49.41.000000 AM", "IMG_20030925_104941.jpg"
sentence           "Invoice #4417 was paid on 25/09/2003 at 10:49.", "Posted on Sept. 25, 2003 by admin"
=================  ==========================================================================

Numeric day and month follow the row's order (``day_first``); a day over 12 is sometimes
written in the other order, as people do, since it reads one way only. Two-digit years
follow :data:`~seqbeam.transforms.date_forms.TWO_DIGIT_YEAR_PIVOT` (RFC 5322: 00-49 are
2000-2049, 50-99 are 1950-1999); the generator only writes them for dates in that window.
Weekdays are always the date's own. A time of day, a zone or the words around a date never
change its target: the date as written (no zone conversion). No word around a date names a
month or a weekday, and the only numbers around one are ids (``#4417``) and amounts
(``$120.50``). Every clean string is at most :data:`MAX_CHARS` characters.
"""

from __future__ import annotations

import datetime
import random
import types
from collections.abc import Callable, Mapping

from seqbeam.transforms.date_forms import (
    DOTTED_MONTH_STYLES,
    MONTH_STYLES,
    TWO_DIGIT_YEARS,
    WEEKDAY_STYLES,
    month_word,
    numeric,
    ordinal,
    pick,
    short_year_ok,
    weekday_word,
    year_first,
)
from seqbeam.transforms.date_times import machine_timestamp, offset, time_of_day, zone

MAX_CHARS = 90

_DASHES = ("--", "-", "\u2014")
_LEADS = ("Shares rose", "Officials said", "The company said", "Talks resumed", "Rain is expected")
_CITIES = ("NEW YORK", "LONDON", "WASHINGTON", "PARIS", "TOKYO", "BERLIN", "SYDNEY", "GENEVA", "BRUSSELS", "MADRID")

# Words before a date, ``{n}`` an id, ``{amount}`` a sum; none names a month or a weekday.
_BEFORE = (
    "Posted on", "Last updated:", "Updated", "Date:", "Date of birth:", "DOB:", "Sent:", "Received:", "Delivered on",
    "Shipped on", "Invoice date:", "Due date:", "Due", "Expires", "Expiry date:", "Valid until", "Effective",
    "Issued on", "Signed on", "We met on", "The deadline is", "Deadline:", "Born", "He was born on",
    "She arrived on", "The contract ends on", "Report generated", "Generated on", "Created", "Printed", "As of",
    "Starting", "Since", "Order placed", "Payment received", "Appointment:", "Next appointment on",
    "Please call me on", "Scheduled for", "The event takes place on", "Filed", "Published", "Released on",
    "Today is", "It happened on", "Checked in", "Timestamp:", "Captured", "Start:", "End:", "Closing date",
    "Submitted", "Last login:", "Reviewed on", "Opened", "The meeting was moved to", "Our flight leaves on",
    "Registration closes", "Letter dated", "Minutes of the meeting held on", "Rent is due", "Estimated delivery:",
    "Ship date", "Arrival:", "Departure:", "Invoice #{n} dated", "Order #{n} shipped on", "Ticket #{n} opened",
    "Paid ${amount} on", "Case #{n}, hearing set for", "Refund of ${amount} issued", "Transaction #{n} -",
    "last seen", "see you", "the package arrived", "they married on", "records show that on", "On", "on",
    "I have a meeting on", "Meet me at the station on", "Reminder: call Bob on", "Term starts",
)
# Words after a date (a log line's level and message, a closing remark); none names a month or a weekday.
_AFTER = (
    ".", "!", " at the latest.", " in Berlin.", ", please confirm.", " (local time)", " by courier.",
    " - thanks!", ", as agreed.", " according to our records.", " and was approved.", ", see attached.",
    " without delay", " by the clerk", " for review", " - final notice", ". Regards, Anna", " in the main hall.",
    " as planned", " INFO Starting server", " ERROR Connection refused", " WARN disk almost full",
    " DEBUG cache hit", " - quarterly report", ": meeting notes", " | build passed", " by admin",
    ", total ${amount}", ", ref #{n}", " (approx.)", " or earlier", " until further notice", " in room #{n}",
    ", I am going to be there", " I am told", ", see you then?", " if possible", " - the AM/PM shift",
)


def _year(date: datetime.date, rng: random.Random, short_rate: float) -> str:
    """Four digits, or (inside the pivot window, at ``short_rate``) two, sometimes with an apostrophe."""
    if short_rate and short_year_ok(date) and rng.random() < short_rate:
        return f"{date.year % 100:02d}"
    return f"{date.year:04d}"


def _day(date: datetime.date, rng: random.Random, ordinal_rate: float = 0.0, padded_rate: float = 0.0) -> str:
    draw = rng.random()
    if draw < ordinal_rate:
        return ordinal(date.day)
    if draw < ordinal_rate + padded_rate:
        return f"{date.day:02d}"
    return str(date.day)


def _apostrophe_year(date: datetime.date, rng: random.Random) -> str:
    return rng.choice(("'", "'", "\u2019")) + f"{date.year % 100:02d}"


def worded(date: datetime.date, rng: random.Random, *, month_styles=MONTH_STYLES, ordinal_rate: float = 0.15,
           short_rate: float = 0.0) -> str:
    """A date with its month in words, in one of the orders English text uses."""
    month = month_word(date, pick(rng, month_styles))
    year = _year(date, rng, short_rate)
    day = _day(date, rng, ordinal_rate)
    kind = pick(rng, (("mdy", 0.45), ("dmy", 0.35), ("dashed", 0.12), ("mdy_dashed", 0.04), ("dmy_dot", 0.04)))
    # "Sep 25, '03": after a day, a bare two-digit year is mostly marked by an apostrophe.
    if len(year) == 2 and rng.random() < {"mdy": 0.85, "dmy_dot": 0.85, "dmy": 0.3}.get(kind, 0.0):
        year = _apostrophe_year(date, rng)
    if kind == "mdy":
        return f"{month} {day}{rng.choice((', ', ' ', ', '))}{year}"
    if kind == "dmy":
        return f"{day} {month}{rng.choice((' ', ' ', ', '))}{year}"
    if kind == "dmy_dot":  # "25. September 2003"
        return f"{date.day}. {month} {year}"
    month = month.rstrip(".")
    if kind == "dashed":  # "25-Sep-2003", "25/Sep/03", "25SEP2003"
        separator = pick(rng, (("-", 0.55), ("/", 0.15), (" ", 0.1), (".", 0.05), ("", 0.15)))
        if separator == "":
            month = month[:3].upper() if rng.random() < 0.7 else month[:3]
        return f"{date.day:02d}{separator}{month}{separator}{year}"
    separator = rng.choice("-/")
    return f"{month}{separator}{date.day:02d}{separator}{year}"


def year_first_words(date: datetime.date, rng: random.Random) -> str:
    """``2003 Sep 25``, ``2003-Sep-25``, ``2003, September 25th``, ``2003.September.25``."""
    month = month_word(date, pick(rng, MONTH_STYLES))
    separator = pick(rng, ((" ", 0.45), ("-", 0.25), ("/", 0.1), (".", 0.08), (", ", 0.12)))
    if separator in "-/.":
        month = month.rstrip(".")
        day = f"{date.day:02d}" if rng.random() < 0.6 else str(date.day)
        return f"{date.year:04d}{separator}{month}{separator}{day}"
    day = _day(date, rng, ordinal_rate=0.2)
    return f"{date.year:04d}{separator}{month} {day}"


def ordinal_form(date: datetime.date, rng: random.Random) -> str:
    """A date whose day is an ordinal, in any of its positions."""
    month = month_word(date, pick(rng, MONTH_STYLES))
    day, year = ordinal(date.day), f"{date.year:04d}"
    kind = pick(rng, (("dmy", 0.28), ("mdy", 0.24), ("of", 0.17), ("the_of", 0.1), ("month_the", 0.08),
                      ("ymd", 0.04), ("legal", 0.04), ("plain_of", 0.05)))
    if kind == "legal":  # "this 25th day of September, 2003"
        return f"{rng.choice(('', 'this ', 'the '))}{day} day of {month_word(date, 'full')}, {year}"
    if kind == "plain_of":  # "25 of September of 2003"
        return f"{date.day} of {month}{rng.choice((' of ', ' ', ', '))}{year}"
    if kind == "dmy":
        return f"{day} {month}{rng.choice((' ', ', '))}{year}"
    if kind == "mdy":
        return f"{month} {day}{rng.choice((', ', ' '))}{year}"
    if kind == "of":
        return f"{day} of {month}{rng.choice((' ', ', '))}{year}"
    if kind == "the_of":
        return f"the {day} of {month}{rng.choice((' ', ', '))}{year}"
    if kind == "month_the":
        return f"{month} the {day}, {year}"
    return f"{year} {month} {day}"


def any_date(date: datetime.date, day_first: bool, rng: random.Random, short_rate: float = 0.1) -> str:
    """A date alone in any of the real-world writings (numeric, year first, worded, ordinal, ...)."""
    kind = pick(rng, (("numeric", 0.35), ("year_first", 0.15), ("worded", 0.35), ("ordinal", 0.07),
                      ("year_first_words", 0.05), ("compact", 0.03)))
    if kind == "numeric":
        return numeric(date, day_first, rng, two_digit_year=short_year_ok(date) and rng.random() < short_rate)
    if kind == "year_first":
        return year_first(date, rng)
    if kind == "worded":
        return worded(date, rng, short_rate=short_rate)
    if kind == "ordinal":
        return ordinal_form(date, rng)
    if kind == "year_first_words":
        return year_first_words(date, rng)
    return f"{date.year:04d}{date.month:02d}{date.day:02d}"


def _with_time(text: str, rng: random.Random, time: str | None = None) -> str:
    """``text`` (a date) with a time of day after it (", 10:49", " at 10:49", " @ 10:49") or before it."""
    time = time or time_of_day(rng)
    if rng.random() < 0.8:
        era = " AD" if rng.random() < 0.02 else ""  # "1996.07.10 AD 12:08 PM"
        return text + era + pick(rng, ((" ", 0.45), (", ", 0.2), (" at ", 0.22), (" @ ", 0.05), (" - ", 0.08))) + time
    before = "at " if rng.random() < 0.2 else ""  # "at 3:00 AM on December 3rd, 2003"
    return before + time + pick(rng, ((" on ", 0.5), (", ", 0.25), (" ", 0.25))) + text


def _with_weekday(date: datetime.date, text: str, rng: random.Random, styles=WEEKDAY_STYLES) -> str:
    """``text`` with the date's weekday before it ("Thursday, ...") or after it ("..., Thursday", "... (Thu)")."""
    weekday = weekday_word(date, pick(rng, styles))
    kind = pick(rng, (("before_comma", 0.45), ("before", 0.25), ("after_comma", 0.12), ("after_brackets", 0.1),
                      ("after", 0.08)))
    if kind == "before_comma":
        return f"{weekday}, {text}"
    if kind == "before":
        return f"{weekday} {text}"
    if kind == "after_comma":
        return f"{text}, {weekday}"
    if kind == "after_brackets":
        return f"{text} ({weekday})"
    return f"{text} {weekday}"


# --- the families -------------------------------------------------------------------------

_Family = Callable[[datetime.date, bool, random.Random], str]


def _time_of_day(date, day_first, rng):
    text = _with_time(any_date(date, day_first, rng), rng)
    return _with_weekday(date, text, rng) if rng.random() < 0.15 else text


def _time_zone(date, day_first, rng):
    time = time_of_day(rng)
    while time in ("noon", "midnight", "12 noon", "12 midnight"):
        time = time_of_day(rng)
    text = any_date(date, day_first, rng) + rng.choice((" ", " ", ", ")) + time + " " + zone(rng)
    return _with_weekday(date, text, rng) if rng.random() < 0.15 else text


def _iso_timestamp(date, day_first, rng):
    iso = f"{date.year:04d}-{date.month:02d}-{date.day:02d}"
    hour, minute, second = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    kind = pick(rng, (("t", 0.5), ("logging", 0.13), ("sql", 0.2), ("t_minutes", 0.1), ("t_hour", 0.03),
                      ("compact_date", 0.04)))
    if kind == "logging":  # Python's logging: comma and milliseconds
        return f"{iso} {hour:02d}:{minute:02d}:{second:02d},{rng.randrange(1000):03d}"
    if kind == "sql":
        fraction = f".{rng.randrange(10 ** 6):06d}" if rng.random() < 0.4 else ""
        zone = pick(rng, (("", 0.75), (" UTC", 0.1), (" offset", 0.15)))
        return f"{iso} {hour:02d}:{minute:02d}:{second:02d}{fraction}" + (
            " " + offset(rng) if zone == " offset" else zone)
    if kind == "t_hour":  # "2003-09-25T10"
        return f"{iso}T{hour:02d}"
    if kind == "compact_date":  # "20080227T21:26:01.123456789"
        iso = iso.replace("-", "")
    text = f"{iso}T{hour:02d}:{minute:02d}"
    if kind in ("t", "compact_date"):
        text += f":{second:02d}"
        if rng.random() < 0.3:
            text += "." + "".join(rng.choice("0123456789") for _ in range(rng.choice((1, 2, 3, 3, 6, 9))))
    suffix = pick(rng, (("", 0.35), ("Z", 0.35), ("offset", 0.3)))
    return text + (offset(rng, colon=rng.random() < 0.8) if suffix == "offset" else suffix)


def _compact(date, day_first, rng):
    ymd = f"{date.year:04d}{date.month:02d}{date.day:02d}"
    hour, minute, second = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    kind = pick(rng, (("date", 0.4), ("t", 0.3), ("digits", 0.15), ("minutes", 0.05), ("underscore", 0.1)))
    if kind == "date":
        return ymd
    if kind == "t":  # "20030925T104941", "T1049", "T10", with a fraction, Z or an offset
        clock = pick(rng, ((f"{hour:02d}{minute:02d}{second:02d}", 0.7), (f"{hour:02d}{minute:02d}", 0.2),
                           (f"{hour:02d}", 0.1)))
        if len(clock) == 6 and rng.random() < 0.15:
            clock += f".{rng.randrange(10)}"
        return f"{ymd}T{clock}" + pick(rng, (("", 0.5), ("Z", 0.3), (offset(rng, colon=False), 0.2)))
    if kind == "digits":
        return f"{ymd}{hour:02d}{minute:02d}{second:02d}"
    if kind == "minutes":
        return f"{ymd}{hour:02d}{minute:02d}"
    return f"{ymd}{rng.choice('_-')}{hour:02d}{minute:02d}{second:02d}"


def _two_digit_year(date, day_first, rng):
    kind = pick(rng, (("numeric", 0.5), ("worded", 0.5)))
    if kind == "numeric":
        text = numeric(date, day_first, rng, two_digit_year=True)
    else:
        text = worded(date, rng, ordinal_rate=0.1, short_rate=1.0)
    if rng.random() < 0.15:
        text = _with_time(text, rng)
    return _with_weekday(date, text, rng) if rng.random() < 0.15 else text


def _weekday(date, day_first, rng):
    if rng.random() < 0.2:  # ctime without the time: "Thu Sep 25 2003"
        return f"{weekday_word(date, 'abbr')} {month_word(date, 'abbr')} {date.day:02d} {date.year:04d}"
    text = any_date(date, day_first, rng, short_rate=0.05)
    if rng.random() < 0.2:
        text = _with_time(text, rng)
    return _with_weekday(date, text, rng)


def _abbreviation(date, day_first, rng):
    text = worded(date, rng, month_styles=DOTTED_MONTH_STYLES, ordinal_rate=0.2, short_rate=0.05)
    if rng.random() < 0.25:
        return _with_weekday(date, text, rng, styles=(("abbr_dot", 0.6), ("long", 0.2), ("abbr", 0.2)))
    return text


def _ordinal(date, day_first, rng):
    text = ordinal_form(date, rng)
    return _with_weekday(date, text, rng) if rng.random() < 0.15 else text


def _year_first_words(date, day_first, rng):
    text = year_first_words(date, rng)
    return _with_time(text, rng) if rng.random() < 0.1 else text


def _fill(words: str, rng: random.Random) -> str:
    """Words around a date with their placeholders filled: an id, an amount."""
    return words.replace("{n}", str(rng.randint(100, 99999))).replace(
        "{amount}", f"{rng.randint(1, 4999)}.{rng.randrange(100):02d}")


def _sentence(date, day_first, rng):
    inner_family = pick(rng, (("any", 0.45), ("time_of_day", 0.25), ("weekday", 0.1),
                              ("abbreviation", 0.06), ("ordinal", 0.05), ("two_digit_year", 0.05),
                              ("iso_timestamp", 0.04)))
    if inner_family == "two_digit_year" and not short_year_ok(date):
        inner_family = "any"
    inner = any_date(date, day_first, rng) if inner_family == "any" else FAMILIES[inner_family](date, day_first, rng)
    kind = pick(rng, (("before", 0.45), ("after", 0.2), ("both", 0.3), ("dateline", 0.05)))
    if kind == "dateline":  # news: "LONDON, Sept. 25, 2003 -- Shares rose"
        return f"{rng.choice(_CITIES)}, {inner} {rng.choice(_DASHES)} {rng.choice(_LEADS)}"
    before = _fill(rng.choice(_BEFORE), rng) + " " if kind in ("before", "both") else ""
    after = _fill(rng.choice(_AFTER), rng) if kind in ("after", "both") else rng.choice(("", "", "."))
    if before[1:2].islower() and rng.random() < 0.3:
        before = before[0].lower() + before[1:]
    if rng.random() < 0.08:  # "(25/09/2003)", "[2003-09-25]", '"Sep 25, 2003"'
        opening, closing = rng.choice((("(", ")"), ("[", "]"), ('"', '"'), ("'", "'")))
        inner = opening + inner + closing
    return before + inner + after


FAMILIES: Mapping[str, _Family] = types.MappingProxyType({
    "time_of_day": _time_of_day,
    "time_zone": _time_zone,
    "iso_timestamp": _iso_timestamp,
    "compact": _compact,
    "two_digit_year": _two_digit_year,
    "weekday": _weekday,
    "abbreviation": _abbreviation,
    "ordinal": _ordinal,
    "year_first_words": _year_first_words,
    "machine": machine_timestamp,
    "sentence": _sentence,
})
REAL_WORLD_FORMS: tuple[str, ...] = tuple(FAMILIES)
# How often each family is drawn (relative): the rich ones more.
FAMILY_WEIGHTS: Mapping[str, float] = types.MappingProxyType({
    "time_of_day": 1.5, "time_zone": 1.0, "iso_timestamp": 0.8, "compact": 0.5, "two_digit_year": 1.2,
    "weekday": 1.0, "abbreviation": 0.7, "ordinal": 0.7, "year_first_words": 0.6, "machine": 1.5, "sentence": 2.0,
})
# Families that need a date a two-digit year can write.
SHORT_YEAR_FAMILIES = frozenset({"two_digit_year"})


def render_real_world(date: datetime.date, family: str, *, day_first: bool, rng: random.Random) -> str:
    """``date`` written in the real-world form ``family`` (one of REAL_WORLD_FORMS), drawn with ``rng``.

    Re-drawn until it fits :data:`MAX_CHARS`. ``two_digit_year`` needs a date in the
    pivot window (:data:`~seqbeam.transforms.date_forms.TWO_DIGIT_YEARS`).
    """
    try:
        renderer = FAMILIES[family]
    except KeyError:
        raise ValueError(f"family: unknown form {family!r}; expected one of {REAL_WORLD_FORMS}") from None
    if family in SHORT_YEAR_FAMILIES and not short_year_ok(date):
        raise ValueError(f"{family}: {date} has no two-digit year (window {TWO_DIGIT_YEARS[0]}..{TWO_DIGIT_YEARS[1]})")
    while True:
        text = renderer(date, day_first, rng)
        if len(text) <= MAX_CHARS:
            return text
