"""Clocks and zones: times of day, UTC offsets, zone names, and the timestamps machines write.

A time of day or a zone never changes a date's target: the date as written, no zone
conversion. The machine timestamps are the ones logs, mail, APIs and file names hold
(``asctime``, ``date(1)``, RFC 2822 and RFC 850 headers, Apache's common log format,
JavaScript's ``Date.toString``, Windows and Excel exports, Outlook's "Sent:" lines, syslog,
Oracle, SAS, git, camera and backup file names).

Standard library only.
"""

from __future__ import annotations

import datetime
import random

from seqbeam.transforms.date_forms import month_word, numeric, pick, short_year_ok, weekday_word

_ZONE_ABBREVIATIONS = ("UTC", "GMT", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "AKST", "HST", "BST",
                       "CET", "CEST", "EET", "EEST", "WET", "WEST", "MSK", "IST", "PKT", "SGT", "HKT", "JST", "KST",
                       "AEST", "AEDT", "NZST", "BRT", "BRST", "ART", "UT")
_ZONE_NAMES = ("Pacific Standard Time", "Eastern Daylight Time", "Central European Summer Time",
               "Coordinated Universal Time", "India Standard Time", "Brasilia Standard Time",
               "Greenwich Mean Time", "Japan Standard Time", "Central Standard Time",
               "Australian Eastern Standard Time", "British Summer Time", "Eastern European Time")
_ZONE_IDS = ("America/New_York", "Europe/Berlin", "Asia/Kolkata", "Europe/London", "America/Sao_Paulo",
             "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles")
_AM_PM = (("AM", "PM"), ("am", "pm"), ("a.m.", "p.m."), ("A.M.", "P.M."))
# Around a log line's timestamp: requests, hosts, processes, messages (no month or weekday names).
_METHODS = ("GET", "POST", "PUT", "HEAD")
_PATHS = ("", "index.html", "api/orders", "login", "static/app.js", "favicon.ico")
_STATUSES = (200, 200, 304, 404, 500)
_HOSTS = ("webhost", "db-primary", "localhost", "mail", "gateway")
_PROCESSES = ("sshd", "cron", "nginx", "postfix/smtpd", "kernel")
_MESSAGES = ("Accepted password for root", "session opened", "connection reset by peer", "job finished",
             "disk quota exceeded")


def time_of_day(rng: random.Random) -> str:
    """A clock time: 24 h or 12 h, with seconds or fractions, am/pm in its spellings, noon, midnight."""
    hour, minute, second = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    kind = pick(rng, (("24", 0.3), ("24s", 0.2), ("24f", 0.07), ("12", 0.2), ("12s", 0.07), ("12h", 0.08),
                      ("words", 0.04), ("french", 0.02), ("hrs", 0.02)))
    hh = f"{hour:02d}" if rng.random() < 0.7 else str(hour)
    if kind == "24":
        return f"{hh}:{minute:02d}"
    if kind == "24s":
        return f"{hh}:{minute:02d}:{second:02d}"
    if kind == "24f":
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.choice((1, 3, 3, 6))))
        return f"{hh}:{minute:02d}:{second:02d}{rng.choice('..,')}{fraction}"
    if kind == "words":
        return rng.choice(("noon", "midnight", "12 noon", "12 midnight"))
    if kind == "french":
        return f"{hour}h{minute:02d}"
    if kind == "hrs":
        return f"{hour:02d}{minute:02d} hrs"
    h12 = hour % 12 or 12
    am, pm = rng.choice(_AM_PM)
    marker = (am if hour < 12 else pm)
    space = rng.choice((" ", " ", ""))
    if kind == "12":
        return f"{h12}:{minute:02d}{space}{marker}"
    if kind == "12s":
        return f"{h12}:{minute:02d}:{second:02d}{space}{marker}"
    return f"{h12}{space}{marker}"


def offset(rng: random.Random, colon: bool | None = None) -> str:
    """A UTC offset: ``+0200``, ``-03:00``, ``+05:30``."""
    hours, minutes = rng.randint(0, 14), rng.choice((0, 0, 0, 30, 45))
    sign = rng.choice("+-")
    colon = rng.random() < 0.5 if colon is None else colon
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def zone(rng: random.Random) -> str:
    """A time zone as records name it: an abbreviation, an offset, ``GMT+2``, a name in brackets."""
    kind = pick(rng, (("abbreviation", 0.45), ("offset", 0.3), ("gmt_offset", 0.1), ("name", 0.08), ("id", 0.07)))
    if kind == "abbreviation":
        return rng.choice(_ZONE_ABBREVIATIONS)
    if kind == "offset":
        return offset(rng)
    if kind == "gmt_offset":
        hours = rng.randint(1, 12)
        return f"{rng.choice(('GMT', 'UTC'))}{rng.choice('+-')}{hours if rng.random() < 0.6 else f'{hours:02d}:00'}"
    if kind == "name":
        name = rng.choice(_ZONE_NAMES)
        return f"({name})" if rng.random() < 0.6 else name
    return rng.choice(_ZONE_IDS)


def _hms(rng: random.Random, separator: str = ":") -> str:
    return separator.join(f"{rng.randrange(n):02d}" for n in (24, 60, 60))


def machine_timestamp(date: datetime.date, day_first: bool, rng: random.Random) -> str:
    """``date`` as a log, mail header, API or file name writes it, with a time of day (the file names aside)."""
    wkd, mon, weekday = weekday_word(date, "abbr"), month_word(date, "abbr"), weekday_word(date, "full")
    year, dd, hms = f"{date.year:04d}", f"{date.day:02d}", _hms(rng)
    kind = pick(rng, (("ctime", 0.12), ("unix_date", 0.08), ("rfc2822", 0.14), ("rfc850", 0.04), ("apache", 0.1),
                      ("javascript", 0.08), ("windows", 0.12), ("outlook", 0.08), ("syslog", 0.05),
                      ("oracle", 0.05), ("sas", 0.03), ("git", 0.04), ("filename", 0.07)))
    if kind == "ctime":  # C's asctime, Python's time.ctime: the day padded with a space
        return f"{wkd} {mon} {date.day:>2} {hms} {year}"
    if kind == "unix_date":  # date(1), Java's Date.toString
        return f"{wkd} {mon} {date.day:>2} {hms} {rng.choice(_ZONE_ABBREVIATIONS)} {year}"
    if kind == "rfc2822":  # mail and HTTP headers
        day = dd if rng.random() < 0.5 else str(date.day)
        text = f"{day} {mon} {year} {hms} {offset(rng, colon=False) if rng.random() < 0.6 else 'GMT'}"
        if rng.random() < 0.1:
            text += " (UTC)"
        return f"{wkd}, {text}" if rng.random() < 0.8 else text
    if kind == "rfc850":
        short = f"{date.year % 100:02d}" if short_year_ok(date) else year
        return f"{weekday}, {dd}-{mon}-{short} {hms} GMT"
    if kind == "apache":  # the common log format, alone or as the whole line
        text = f"{dd}/{mon}/{year}:{hms} {offset(rng, colon=False)}"
        if rng.random() < 0.35:
            address = ".".join(str(rng.randint(1, 254)) for _ in range(4))
            request = f'"{rng.choice(_METHODS)} /{rng.choice(_PATHS)} HTTP/1.{rng.randint(0, 1)}"'
            return f"{address} - - [{text}] {request} {rng.choice(_STATUSES)} {rng.randint(0, 99999)}"
        return f"[{text}]" if rng.random() < 0.7 else text
    if kind == "javascript":  # Date.prototype.toString
        return f"{wkd} {mon} {dd} {year} {hms} GMT{offset(rng, colon=False)} ({rng.choice(_ZONE_NAMES)})"
    if kind == "windows":  # Excel, Windows, CSV exports: the locale's numeric order and clock
        text = numeric(date, day_first, rng, separators="/" if not day_first else "/.-")
        h12, minute, second = rng.randint(1, 12), rng.randrange(60), rng.randrange(60)
        if day_first and rng.random() < 0.7:
            return f"{text} {rng.randrange(24):02d}:{minute:02d}" + (f":{second:02d}" if rng.random() < 0.6 else "")
        return f"{text} {h12}:{minute:02d}:{second:02d} {rng.choice(('AM', 'PM'))}"
    if kind == "outlook":  # "Sent:" lines
        h12, minute = rng.randint(1, 12), rng.randrange(60)
        if day_first:
            return f"{weekday}, {date.day} {month_word(date, 'full')} {year} {rng.randrange(24):02d}:{minute:02d}"
        return f"{weekday}, {month_word(date, 'full')} {date.day}, {year} {h12}:{minute:02d} {rng.choice(('AM', 'PM'))}"
    if kind == "syslog":  # with a year, alone or with its host, process and message
        text = f"{mon} {date.day:>2} {year} {hms}"
        if rng.random() < 0.4:
            text += f" {rng.choice(_HOSTS)} {rng.choice(_PROCESSES)}[{rng.randint(2, 65535)}]: {rng.choice(_MESSAGES)}"
        return text
    if kind == "oracle":  # DD-MON-RR, and TIMESTAMP's default
        short = f"{date.year % 100:02d}" if short_year_ok(date) else year
        if rng.random() < 0.5:
            return f"{dd}-{mon.upper()}-{short}"
        h12 = rng.randint(1, 12)
        return f"{dd}-{mon.upper()}-{short} {h12:02d}.{_hms(rng, '.')[3:]}.{rng.randrange(10 ** 6):06d} " \
               f"{rng.choice(('AM', 'PM'))}"
    if kind == "sas":
        return f"{dd}{mon.upper()}{year}" + (f":{hms}" if rng.random() < 0.5 else "")
    if kind == "git":
        return f"{wkd} {mon} {date.day} {hms} {year} {offset(rng, colon=False)}"
    ymd = f"{year}{date.month:02d}{date.day:02d}"
    iso = f"{year}-{date.month:02d}-{date.day:02d}"
    return rng.choice((f"IMG_{ymd}_{hms.replace(':', '')}.jpg", f"backup-{iso}.tar.gz", f"report_{ymd}.csv",
                       f"{iso}_{hms.replace(':', '')}.log"))
