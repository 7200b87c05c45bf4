"""Inference post-processing: sentences, emoji insertion, detokenization, date checks, rows."""

from __future__ import annotations

import datetime

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from seqbeam.transforms.date_generator import generate_dates
from seqbeam.transforms.postprocess import (
    DateOutputs,
    EmojiOutputs,
    NameOutputs,
    PostprocessBatches,
    ReberOutputs,
    TranslationOutputs,
    check_date,
    detokenize,
    emojify,
    failed_inference_rejections,
    name_key,
    result_inputs,
    split_sentences,
)
from seqbeam.transforms.records import REJECTED, STATS
from seqbeam.transforms.retry import RetryRowByRow, single_rows
from seqbeam.transforms.sinks import SumCounts


@pytest.mark.parametrize("text, pieces", [
    ("Congratulations on the promotion! Lets get coffee and talk. Love you!",
     ("Congratulations on the promotion! ", "Lets get coffee and talk. ", "Love you!")),
    ("one sentence", ("one sentence",)),
    ("Really?! Yes... \"Sure.\"  Ok", ("Really?! ", "Yes... ", "\"Sure.\"  ", "Ok")),
    ("Ends with a space. ", ("Ends with a space. ",)),
    ("3.5 is a number. Right", ("3.5 is a number. ", "Right")),
])
def test_split_sentences_cuts_after_terminal_punctuation_and_joins_back(text, pieces):
    assert split_sentences(text) == pieces
    assert "".join(split_sentences(text)) == text


def test_emojify_writes_each_emoji_after_its_sentence_keeping_the_spacing():
    pieces = split_sentences("Congratulations on the promotion! Lets get coffee and talk. Love you!")
    assert emojify(pieces, ["👍", "☕️", "❤️"]) == (
        "Congratulations on the promotion! 👍 Lets get coffee and talk. ☕️ Love you! ❤️")
    assert emojify(pieces, [None, "☕️", None]) == (
        "Congratulations on the promotion! Lets get coffee and talk. ☕️ Love you!")


def test_detokenize_reattaches_punctuation():
    assert detokenize("¿ dónde está el baño ?") == "¿dónde está el baño?"
    assert detokenize("hola , amigo . ¡ qué bien !") == "hola, amigo. ¡qué bien!"
    assert detokenize("it ' s ( really ) fine") == "it's (really) fine"


@pytest.mark.parametrize("output, raw, expected", [
    ("2019-04-22", "April 22, 2019", ("2019-04-22", True, None)),
    ("2019-04-22", "Monday, April 22, 2019", ("2019-04-22", True, None)),
    ("2019-04-22", "mon 22 apr 2019", ("2019-04-22", True, None)),
    ("2019-02-30", "February 30, 2019", (None, False, "not_a_date")),
    ("2019-13-01", "13/01/2019", (None, False, "not_a_date")),
    ("2019-4-22", "April 22, 2019", (None, False, "not_a_date")),
    ("", "???", (None, False, "not_a_date")),
    ("2019-04-23", "Monday, April 22, 2019", ("2019-04-23", False, "weekday_mismatch")),
    ("2019-04-22", "Monday or Friday, April 22", ("2019-04-22", False, "weekday_conflict")),
])
def test_check_date_flags_non_dates_and_weekday_contradictions(output, raw, expected):
    iso_date, valid, flag = check_date(output, raw)
    assert (iso_date, valid) == expected[:2]
    if expected[2] is None:
        assert flag is None
    else:
        assert flag.startswith(expected[2] + ":")


def test_check_date_accepts_every_generated_input_with_its_true_date():
    examples = list(generate_dates(2000, seed=3, noise_rate=0.0))
    for example in examples:
        assert check_date(example.iso, example.raw) == (example.iso, True, None), example.raw
    # One day off contradicts every input that names its weekday.
    named = 0
    for example in examples:
        wrong = (datetime.date.fromisoformat(example.iso) + datetime.timedelta(days=1)).isoformat()
        iso_date, valid, flag = check_date(wrong, example.raw)
        if not valid:
            named += 1
            assert flag.startswith("weekday_mismatch") and iso_date == wrong
    assert named > 100


def _result(example, **inference):
    return PredictionResult(example, inference, "123")


def test_date_rows_show_the_input_without_its_day_order_token_and_keep_the_weekday_check():
    fmt = DateOutputs(max_tokens=96, overflow="truncate", min_confidence=0.5)
    for example in ("\ue001 Monday, 22/04/2019", "\ue000Monday, 04/22/2019", "Monday, 04/22/2019"):
        row = fmt.outcome("d:1", _result(example, tokens=20, text=b"2019-04-23", score=-0.01)).row
        assert row["raw"] == example.lstrip("\ue000\ue001 ")
        assert (row["iso_date"], row["valid"]) == ("2019-04-23", False) and row["flag"].startswith("weekday_mismatch")


def test_emoji_outputs_row_matches_its_schema_and_threshold():
    fmt = EmojiOutputs(max_tokens=5, overflow="truncate", min_confidence=0.5, threshold=0.6)
    pieces = split_sentences("I love you. Lets eat!")
    outcome = fmt.outcome("a:1", _result(pieces, tokens=[3, 2], label=[0, 4], emoji=["❤️".encode(), "🍴".encode()],
                                         probability=[0.9, 0.55]))
    assert outcome.rejected is None and outcome.low_confidence is False and outcome.truncated is False
    assert outcome.row["emojified_text"] == "I love you. ❤️ Lets eat!"
    assert [s["text"] for s in outcome.row["sentences"]] == ["I love you.", "Lets eat!"]
    table = pa.Table.from_pylist([outcome.row], schema=fmt.schema)
    assert table.num_rows == 1


@pytest.mark.parametrize("overflow", ["truncate", "reject"])
def test_overflow_truncates_and_flags_or_rejects(overflow):
    fmt = TranslationOutputs(max_tokens=4, overflow=overflow, min_confidence=0.5, word_level=True)
    outcome = fmt.outcome("b:7", _result("one two three four five", tokens=5,
                                         text="uno dos tres cuatro".encode(), score=-0.1))
    if overflow == "reject":
        assert outcome.row is None
        assert outcome.rejected["code"] == "too_many_tokens" and outcome.rejected["stage"] == "infer"
        assert outcome.rejected["raw"] == "one two three four five" and "5 tokens" in outcome.rejected["reason"]
    else:
        assert outcome.row["truncated"] is True and outcome.truncated is True
        assert outcome.row["translation"] == "uno dos tres cuatro"


def test_date_outputs_rows_fit_the_schema_with_nulls_for_non_dates():
    fmt = DateOutputs(max_tokens=40, overflow="truncate", min_confidence=0.5)
    good = fmt.outcome("d:1", _result("Apr 22 2019", tokens=11, text=b"2019-04-22", score=-0.01))
    bad = fmt.outcome("d:2", _result("Feb 30 2019", tokens=11, text=b"2019-02-30", score=-2.0))
    assert good.row["valid"] and good.row["flag"] is None and not good.low_confidence
    assert bad.row["iso_date"] is None and not bad.row["valid"] and bad.low_confidence
    assert bad.row["output"] == "2019-02-30"
    table = pa.Table.from_pylist([good.row, bad.row], schema=fmt.schema)
    assert table.column("iso_date").null_count == 1


def test_name_outputs_novelty_and_empty_samples():
    from seqbeam.transforms.inference import Prompt

    fmt = NameOutputs(max_tokens=32, overflow="truncate", min_confidence=0.5)
    known = frozenset({name_key("Tyrannosaurus")})
    old = fmt.outcome("s:1", _result(Prompt("", 0), text=b"tyrannosaurus", score=-3.0), known)
    new = fmt.outcome("s:2", _result(Prompt("", 0), text=b"zorgosaurus", score=-9.0), known)
    empty = fmt.outcome("s:3", _result(Prompt("", 0), text=b"", score=-1.0), known)
    assert (old.row["name"], old.row["novel"]) == ("Tyrannosaurus", False)
    assert (new.row["name"], new.row["novel"]) == ("Zorgosaurus", True)
    assert empty.row is None and empty.rejected["code"] == "empty_sample"


def test_a_failed_model_call_rejects_every_row_of_its_batch_with_the_error():
    from seqbeam.transforms.inference import Prompt

    batch = [("a:1", "first"), ("a:2", ("two ", "sentences")), ("s:3", Prompt("", 4))]
    records = failed_inference_rejections((batch, ValueError("tensor shape mismatch")))
    assert [(r["id"], r["raw"], r["stage"], r["code"]) for r in records] == [
        ("a:1", "first", "infer", "inference_error"),
        ("a:2", "two sentences", "infer", "inference_error"),
        ("s:3", "", "infer", "inference_error"),
    ]
    assert all(r["reason"] == "inference_error: ValueError: tensor shape mismatch" for r in records)


class PoisonedReber(ReberOutputs):
    """Reber outputs that raise on the row keyed "poison", as a post-processing bug would."""

    def outcome(self, key, result, known=frozenset()):
        if key == "poison":
            raise ValueError("injected post-processing bug")
        return super().outcome(key, result, known)


def test_postprocess_counts_are_outputs_counted_once_when_a_batch_is_retried_row_by_row():
    def result(text, probability, tokens=3):
        return _result(text, label=int(probability >= 0.5), probability=probability, tokens=tokens)

    fmt = PoisonedReber(max_tokens=4, overflow="truncate", min_confidence=0.7)
    # The first batch fails on its second row, after its first was post-processed: retried row by row.
    batches = [[("a", result("BT", 0.9)), ("poison", result("BP", 0.9)), ("c", result("BPT", 0.6, tokens=6))],
               [("d", result("BTE", 0.2)), ("e", result("BTT", 0.55))]]
    pipeline = TestPipeline()
    post = (
        pipeline
        | beam.Create(batches)
        | beam.ParDo(RetryRowByRow(PostprocessBatches(fmt), stage="postprocess", split=single_rows,
                                   rows=result_inputs)).with_outputs(REJECTED, STATS, main="tables")
    )
    counts = post[STATS] | beam.CombineGlobally(SumCounts())
    # Rows a, c, d, e: c and e under 0.7 confident either way, c longer than the model reads.
    assert_that(counts, equal_to([{"out": 4, "low_confidence": 2, "truncated": 1, "flagged": 0}]), label="Counts")
    assert_that(post.tables | beam.Map(lambda table: table.num_rows) | "Rows" >> beam.CombineGlobally(sum),
                equal_to([4]), label="Tables")
    assert_that(post[REJECTED] | beam.Map(lambda r: (r["id"], r["code"])), equal_to([("poison", "processing_error")]),
                label="Rejected")
    result_of_run = pipeline.run()
    result_of_run.wait_until_finish()
    counters = result_of_run.metrics().query(MetricsFilter().with_namespace("infer").with_name("rows_out"))["counters"]
    assert sum(c.committed for c in counters) == 4


def test_emoji_table_built_by_columns_equals_the_rows_one_by_one():
    """EmojiOutputs builds its batch table column by column: the same table as its rows' from_pylist."""
    from seqbeam.transforms.postprocess import OutputFormat

    fmt = EmojiOutputs(max_tokens=4, overflow="reject", min_confidence=0.7, threshold=0.6)
    texts = ["I love you. Lets eat!", "so sad\u3000", "one two three four five six.", "Play ball! Now. Go\t"]
    results = []
    for i, text in enumerate(texts):
        pieces = split_sentences(text)
        k = len(pieces)
        results.append((f"e:{i}", _result(pieces, tokens=[len(p.split()) for p in pieces], label=[i % 5] * k,
                                          emoji=[["❤️", "⚾", "😄", "😞", "🍴"][i % 5].encode()] * k,
                                          probability=[0.5 + 0.1 * j for j in range(k)])))
    columns = fmt.outcomes_table(results, frozenset())
    rows = OutputFormat.outcomes_table(fmt, results, frozenset())
    assert columns[0].equals(rows[0]) and columns[0].num_rows == 3
    assert columns[1] == rows[1] and len(columns[1]) == 1 and columns[2] == rows[2]
