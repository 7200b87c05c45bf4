"""Evaluation metrics (CombineFns) and where the evaluation takes its ground truth from."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
import sacrebleu
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from seqbeam.configs.schema import config_from_dict
from seqbeam.pipelines.evaluate import ALL, reference_of
from seqbeam.transforms.metrics import (
    ClassificationMetrics,
    DateMetrics,
    NameMetrics,
    TranslationMetrics,
    classification_report,
)


def combine(fn: beam.CombineFn, items: list, parts: int = 3):
    """Runs ``fn`` as Beam would: accumulate ``parts`` shares apart, merge, extract."""
    shares = [items[i::parts] for i in range(parts)]
    accumulators = [fn.add_inputs(fn.create_accumulator(), share) for share in shares]
    return fn.extract_output(fn.merge_accumulators(accumulators))


def test_classification_report_by_hand():
    # true \ predicted: 3 of class a right, 1 a taken for b; b: 1 right, 1 taken for a; c never seen.
    matrix = np.array([[3, 1, 0], [1, 1, 0], [0, 0, 0]])
    report = classification_report(matrix, ["a", "b", "c"])
    assert report["rows"] == 6 and report["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    a, b, c = report["per_class"]
    assert (a["precision"], a["recall"], a["support"]) == (0.75, 0.75, 4)
    assert (b["precision"], b["recall"], b["f1"]) == (0.5, 0.5, 0.5)
    assert c == {"class": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["macro_f1"] == pytest.approx((0.75 + 0.5) / 2)  # c occurs nowhere: not averaged
    assert report["confusion_matrix"] == matrix.tolist()


def test_classification_metrics_merge_partial_matrices():
    pairs = [(0, 0), (0, 1), (1, 1), (2, 2), (2, 0), (1, 1), (0, 0)]
    report = combine(ClassificationMetrics(["x", "y", "z"]), pairs)
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report["accuracy"] == pytest.approx(5 / 7, abs=1e-6)


def test_translation_metrics_equal_sacrebleu_on_the_whole_corpus():
    hypotheses = ["el gato está en la casa", "hola mundo", "me gusta el café", "", "¿dónde está?"]
    references = ["el gato está en casa", "hola a todo el mundo", "me gusta mucho el café", "buenos días",
                  "¿dónde está?"]
    scores = combine(TranslationMetrics(), list(zip(hypotheses, references)))
    assert scores["rows"] == 5
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score, abs=1e-3)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=1e-3)
    assert scores["bleu_signature"].startswith("nrefs:1|") and "chrf_signature" in scores
    assert TranslationMetrics().extract_output(TranslationMetrics().create_accumulator())["bleu"] is None


def test_translation_metrics_merged_from_many_parts_are_sacrebleus_corpus_scores(caplog):
    rng = np.random.default_rng(3)
    words = "the a cat dog sat on mat hat red big small , . ! runs quickly".split()
    references = [" ".join(rng.choice(words, size=rng.integers(1, 15))) for _ in range(80)]
    hypotheses = []
    for reference in references:  # some copies, some edits, some unrelated, a few empty
        tokens = reference.split()
        kind = rng.integers(4)
        if kind == 1:
            tokens = [w if rng.random() < 0.7 else str(rng.choice(words)) for w in tokens]
        elif kind == 2:
            tokens = list(rng.choice(words, size=rng.integers(0, 6)))
        elif kind == 3:
            tokens = tokens[: len(tokens) // 2]
        hypotheses.append(" ".join(tokens))
    with caplog.at_level("WARNING", logger="sacrebleu"):
        scores = combine(TranslationMetrics(), list(zip(hypotheses, references)), parts=7)
    assert not caplog.records  # e.g. no "enable effective_order" warning per sentence
    assert scores["rows"] == 80
    assert scores["bleu"] == round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 4)
    assert scores["chrf"] == round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 4)
    for name, metric in (("bleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF())):
        metric.corpus_score(hypotheses, [references])  # the signature reports the references it saw
        assert scores[f"{name}_signature"] == str(metric.get_signature())


def test_date_metrics_by_format_and_noise():
    scored = [("long", False, True, True), ("long", False, False, True), ("long", True, True, True),
              ("iso", False, True, True), ("iso", True, False, False), ("", None, True, True)]
    report = combine(DateMetrics(["iso", "long", "short"]), scored)
    assert report["rows"] == 6 and report["exact_match"] == pytest.approx(4 / 6, abs=1e-6)
    assert report["valid_rate"] == pytest.approx(5 / 6, abs=1e-6)
    assert report["clean"] == {"rows": 3, "exact_match": pytest.approx(2 / 3, abs=1e-6)}
    assert report["noisy"] == {"rows": 2, "exact_match": 0.5}
    assert report["per_format"] == [
        {"format": "iso", "clean_rows": 1, "clean_exact_match": 1.0, "noisy_rows": 1, "noisy_exact_match": 0.0},
        {"format": "long", "clean_rows": 2, "clean_exact_match": 0.5, "noisy_rows": 1, "noisy_exact_match": 1.0},
    ]


def test_name_metrics_novelty_uniqueness_and_lengths():
    report = combine(NameMetrics(), [("Aurosaurus", True), ("Kiraptor", False), ("aurosaurus", True),
                                     ("Tovenator", True)])
    assert report["rows"] == 4 and report["novel"] == 0.75 and report["unique"] == 0.75
    assert report["length"] == {"mean": 9.25, "min": 8, "max": 10, "histogram": {"8": 1, "9": 1, "10": 2}}


def test_metrics_combine_in_a_pipeline():
    with TestPipeline() as p:
        scores = (
            p
            | beam.Create([(ALL, (0, 0)), (ALL, (1, 0)), ("test", (1, 1)), (ALL, (1, 1))])
            | beam.CombinePerKey(ClassificationMetrics(["a", "b"]))
            | beam.MapTuple(lambda split, report: (split, report["confusion_matrix"]))
        )
        assert_that(scores, equal_to([(ALL, [[1, 0], [1, 1]]), ("test", [[0, 0], [0, 1]])]))


EMOJI = {
    "task": {"name": "emoji", "kind": "classifier", "classes": ["a", "b", "c"]},
    "data": {"format": "csv", "path": "corpus.csv", "text_column": "sentence", "label_column": "label"},
}
DATES = {
    "task": {"name": "dates", "kind": "seq2seq"},
    "preprocess": {"tokenizer": {"level": "char"}},
    "data": {"format": "generated", "generator": {"name": "dates", "num_rows": 100, "seed": 1}},
}


def test_reference_defaults():
    training_corpus = reference_of(config_from_dict(EMOJI))
    assert training_corpus.data.label_column == "label" and training_corpus.splits == (ALL, "test")
    same_file = reference_of(config_from_dict({**EMOJI, "infer": {"input": {"format": "csv", "path": "corpus.csv",
                                                                            "text_column": "sentence"}}}))
    assert same_file.data.label_column == "label" and same_file.splits == (ALL, "test")
    other = config_from_dict({**EMOJI, "infer": {"input": {"format": "text", "path": "other.txt"}}})
    assert reference_of(other).data is None and "evaluate.reference" in reference_of(other).description
    given = config_from_dict({**EMOJI, "infer": {"input": {"format": "text", "path": "other.txt"}},
                              "evaluate": {"reference": {"format": "csv", "path": "other.csv", "label_column": 1}}})
    assert reference_of(given).data.path == "other.csv" and reference_of(given).splits == (ALL,)
    unseen = config_from_dict({**DATES, "infer": {"input": {"format": "generated", "generator": {
        "name": "dates", "num_rows": 50, "seed": 2}}}})
    assert reference_of(unseen).data.generator.seed == 2 and reference_of(unseen).splits == (ALL,)
