"""Tests for the synthetic date-normalisation data generator."""

from __future__ import annotations

import collections
import datetime
import random
import re

import pytest

from seqbeam.transforms import date_generator as dg
from seqbeam.transforms import date_noise
from seqbeam.transforms.date_generator import FORMATS, DateExample, generate_dates, ordinal, render

DATE = datetime.date(7075, 9, 20)  # a Monday
NUMERIC_FORMATS = tuple(f for f in FORMATS if f.startswith("numeric_"))
ALL_DIGIT_FORMATS = NUMERIC_FORMATS + ("iso", "ymd_slash", "ymd_dot")


@pytest.fixture(scope="module")
def examples() -> list[DateExample]:
    return list(generate_dates(4000, seed=7))


@pytest.fixture(scope="module")
def noisy_examples() -> list[DateExample]:
    return list(generate_dates(3000, seed=11, noise_rate=1.0))


def _clean_rendering(example: DateExample, day_first: bool = False) -> str:
    return render(datetime.date.fromisoformat(example.iso), example.format, day_first=day_first)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("month_day_year", "September 20, 7075"),
        ("mon_day_year", "Sep 20, 7075"),
        ("day_month_year", "20 September 7075"),
        ("day_mon_year", "20 Sep 7075"),
        ("month_ordinal_year", "September 20th, 7075"),
        ("ordinal_of_month_year", "the 20th of September, 7075"),
        ("weekday_month_day_year", "Monday, September 20, 7075"),
        ("wkd_day_mon_year", "Mon, 20 Sep 7075"),
        ("day_mon_year_dashed", "20-Sep-7075"),
        ("iso", "7075-09-20"),
        ("ymd_slash", "7075/09/20"),
        ("ymd_dot", "7075.09.20"),
        ("numeric_slash", "09/20/7075"),
        ("numeric_dash", "09-20-7075"),
        ("numeric_dot", "09.20.7075"),
        ("numeric_slash_unpadded", "9/20/7075"),
        ("numeric_dash_unpadded", "9-20-7075"),
        ("numeric_dot_unpadded", "9.20.7075"),
    ],
)
def test_render_known_date(fmt: str, expected: str) -> None:
    assert render(DATE, fmt) == expected


def test_every_format_has_a_known_rendering() -> None:
    assert len(FORMATS) == len(set(FORMATS)) == 18


@pytest.mark.parametrize(
    ("fmt", "month_first", "day_first"),
    [
        ("numeric_slash", "09/20/7075", "20/09/7075"),
        ("numeric_dash", "09-20-7075", "20-09-7075"),
        ("numeric_dot", "09.20.7075", "20.09.7075"),
        ("numeric_slash_unpadded", "9/20/7075", "20/9/7075"),
        ("numeric_dash_unpadded", "9-20-7075", "20-9-7075"),
        ("numeric_dot_unpadded", "9.20.7075", "20.9.7075"),
    ],
)
def test_day_first_switches_numeric_order(fmt: str, month_first: str, day_first: str) -> None:
    assert render(DATE, fmt, day_first=False) == month_first
    assert render(DATE, fmt, day_first=True) == day_first


def test_day_first_leaves_other_formats_alone() -> None:
    for fmt in set(FORMATS) - set(NUMERIC_FORMATS):
        assert render(DATE, fmt, day_first=True) == render(DATE, fmt, day_first=False)


def test_generated_numeric_rows_follow_day_first() -> None:
    for day_first, leading in ((True, "20"), (False, "9")):
        rows = generate_dates(400, seed=3, day_first=day_first, noise_rate=0, start=DATE, end=DATE)
        numeric = [r for r in rows if r.format in NUMERIC_FORMATS]
        assert numeric
        for row in numeric:
            assert re.split(r"[/.-]", row.raw.strip())[0].lstrip("0") == leading, row


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="format"):
        render(DATE, "no_such_format")


@pytest.mark.parametrize(
    ("number", "expected"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (10, "10th"), (11, "11th"), (12, "12th"),
     (13, "13th"), (20, "20th"), (21, "21st"), (22, "22nd"), (23, "23rd"), (24, "24th"),
     (30, "30th"), (31, "31st"), (111, "111th"), (112, "112th"), (101, "101st")],
)
def test_ordinal_suffixes(number: int, expected: str) -> None:
    assert ordinal(number) == expected


def test_weekday_format_names_true_weekday() -> None:
    rows = generate_dates(3000, seed=5, noise_rate=0)
    weekday_rows = [r for r in rows if r.format == "weekday_month_day_year"]
    assert len(weekday_rows) > 50
    for row in weekday_rows:
        true_weekday = datetime.date.fromisoformat(row.iso).strftime("%A").lower()
        assert row.raw.strip().lower().startswith(true_weekday + ","), row
    assert render(datetime.date(2019, 4, 22), "weekday_month_day_year") == "Monday, April 22, 2019"
    assert render(datetime.date(2000, 1, 1), "wkd_day_mon_year") == "Sat, 1 Jan 2000"


def test_deterministic_for_a_seed() -> None:
    assert list(generate_dates(500, seed=42)) == list(generate_dates(500, seed=42))
    assert list(generate_dates(500, seed=42)) != list(generate_dates(500, seed=43))


def test_does_not_touch_global_random_state() -> None:
    random.seed(0)
    expected = random.random()
    random.seed(0)
    list(generate_dates(100, seed=1))
    assert random.random() == expected


def test_n_examples(examples: list[DateExample]) -> None:
    assert len(examples) == 4000
    assert list(generate_dates(0, seed=1)) == []


def test_iso_parses_and_lies_in_range() -> None:
    start, end = datetime.date(1999, 12, 25), datetime.date(2000, 1, 5)
    rows = list(generate_dates(1000, seed=9, start=start, end=end))
    dates = {datetime.date.fromisoformat(r.iso) for r in rows}
    assert min(dates) >= start and max(dates) <= end
    assert dates == {start + datetime.timedelta(days=k) for k in range(12)}  # endpoints included
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.iso) for r in rows)


def test_default_range_iso(examples: list[DateExample]) -> None:
    for row in examples:
        date = datetime.date.fromisoformat(row.iso)
        assert datetime.date(1000, 1, 1) <= date <= datetime.date(9999, 12, 31)


def test_every_format_appears(examples: list[DateExample]) -> None:
    counts = collections.Counter(r.format for r in examples)
    assert set(counts) == set(FORMATS)
    assert min(counts.values()) > 100


def test_no_empty_or_control_characters(examples: list[DateExample], noisy_examples: list[DateExample]) -> None:
    for row in examples + noisy_examples:
        assert row.raw.strip(), row
        assert "\t" not in row.raw and "\n" not in row.raw and "\r" not in row.raw, row


def test_noise_rate_zero_gives_clean_rows_matching_rendering() -> None:
    rows = list(generate_dates(2000, seed=13, noise_rate=0))
    assert not any(r.noisy for r in rows)
    for row in rows:
        assert dg.normalise(row.raw) == dg.normalise(_clean_rendering(row)), row


def test_case_and_spacing_variations_are_a_minority() -> None:
    rows = list(generate_dates(3000, seed=17, noise_rate=0))
    textual = [r for r in rows if r.format not in ALL_DIGIT_FORMATS]
    upper = sum(r.raw.isupper() for r in textual) / len(textual)
    lower = sum(r.raw == r.raw.lower() for r in textual) / len(textual)
    spaced = sum(r.raw != " ".join(r.raw.split()) for r in rows) / len(rows)
    assert 0.05 < upper < 0.15
    # "the 20th of ..." renders lowercase already.
    assert 0.05 < lower < 0.25
    assert 0.05 < spaced < 0.15


def test_noise_rate_one_makes_every_row_noisy(noisy_examples: list[DateExample]) -> None:
    assert all(r.noisy for r in noisy_examples)
    for row in noisy_examples:
        assert row.raw != _clean_rendering(row)
        # Noise is more than a case/spacing variation.
        assert dg.normalise(row.raw) != dg.normalise(_clean_rendering(row)), row


def test_noise_rate_is_respected() -> None:
    rows = list(generate_dates(4000, seed=19, noise_rate=0.25))
    share = sum(r.noisy for r in rows) / len(rows)
    assert 0.21 < share < 0.29


def test_noise_is_small(noisy_examples: list[DateExample]) -> None:
    for row in noisy_examples:
        clean = dg.normalise(_clean_rendering(row))
        assert date_noise.edit_distance(dg.normalise(row.raw), clean) <= 7, row


def test_noise_keeps_the_digits_of_numeric_formats(noisy_examples: list[DateExample]) -> None:
    undo_ocr = str.maketrans("OoIlSsBZz", "001155822")
    rows = [r for r in noisy_examples if r.format in ALL_DIGIT_FORMATS]
    assert len(rows) > 300
    for row in rows:
        digit_groups = re.findall(r"\d+", row.raw.translate(undo_ocr))
        assert digit_groups == re.findall(r"\d+", _clean_rendering(row)), row


def test_noise_covers_every_kind(noisy_examples: list[DateExample]) -> None:
    raws = [r.raw for r in noisy_examples]
    assert any(re.search(r"[,./-]{2}", raw) for raw in raws)  # doubled punctuation
    assert any(re.search(r"\d[OlIZSB]|[OlIZSB]\d", raw) for raw in raws)  # OCR confusion
    assert any(re.search(r"(?i)\b(janu|febr|marc|apri|augu|sept|octo|nove|dece)[a-z]*\b", raw)
               and not re.search(r"(?i)january|february|march|april|august|september|october|november|december"
                                 r"|\b(jan|feb|mar|apr|aug|sep|oct|nov|dec)\b", raw)
               for raw in raws)  # truncated or misspelt month
    assert any(" ," in raw or " /" in raw for raw in raws)  # stray space
    assert any(re.search(r",\d", raw) for raw in raws)  # missing space


@pytest.mark.parametrize("month", range(1, 13))
def test_misspelt_months_stay_recognisable(month: int) -> None:
    rng = random.Random(month)
    name = dg.MONTHS[month - 1]
    for _ in range(200):
        text = date_noise._misspell_month(f"{name} 1, 2000", month, rng)
        if len(name) < 4:
            assert text is None
            continue
        assert text is not None
        typo = text.split(" ")[0].lower()
        assert typo != name.lower()
        distances = [date_noise.edit_distance(typo, m.lower()) for m in dg.MONTHS]
        assert distances.index(min(distances)) == month - 1
        assert distances.count(min(distances)) == 1


def test_month_prefixes_used_for_truncation_are_unique() -> None:
    prefixes = [m[:4].lower() for m in dg.MONTHS if len(m) >= 5]
    assert len(prefixes) == len(set(prefixes))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n": -1}, "n"),
        ({"noise_rate": -0.1}, "noise_rate"),
        ({"noise_rate": 1.5}, "noise_rate"),
        ({"noise_rate": float("nan")}, "noise_rate"),
        ({"start": datetime.date(2001, 1, 1), "end": datetime.date(2000, 1, 1)}, "start"),
        ({"real_world_rate": 1.5}, "real_world_rate"),
        ({"day_first": "both"}, "day_first"),
    ],
)
def test_validates_arguments_eagerly(kwargs: dict, argument: str) -> None:
    call = {"n": 1, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=argument):
        generate_dates(**call)


def test_day_first_none_draws_each_rows_order_and_keeps_classic_rows_as_they_were():
    rows = list(generate_dates(2000, seed=4, day_first=None, noise_rate=0))
    assert 0.45 < sum(r.day_first for r in rows) / len(rows) < 0.55
    for row in rows:
        assert dg.normalise(row.raw) == dg.normalise(_clean_rendering(row, row.day_first)), row
    # Without real-world rows the stream is the one the classic generator always drew.
    assert [r.raw for r in generate_dates(300, seed=9)] == [r.raw for r in generate_dates(300, seed=9, real_world_rate=0)]
    assert all(r.format in FORMATS and r.day_first is False for r in generate_dates(300, seed=9))


def test_real_world_rate_sets_the_share_of_real_world_rows():
    rows = list(generate_dates(3000, seed=10, real_world_rate=0.6))
    share = sum(r.format not in FORMATS for r in rows) / len(rows)
    assert 0.56 < share < 0.64


def test_generate_command_writes_both_orders_and_real_world_forms(tmp_path):
    import json

    from seqbeam.pipelines import generate

    path = tmp_path / "dates.jsonl"
    assert generate.run(["dates", "-n", "200", "-o", str(path), "--both-orders", "--real-world-rate", "1"]) == 200
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert {row["day_first"] for row in rows} == {True, False}
    assert set(rows[0]) == {"raw", "iso", "format", "noisy", "day_first"}
    assert all(row["format"] in dg.REAL_WORLD_FORMS for row in rows)
    with pytest.raises(SystemExit):
        generate.parse_args(["dates", "-n", "1", "-o", "x.jsonl", "--day-first", "--both-orders"])
