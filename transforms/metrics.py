"""Evaluation metrics as Beam CombineFns: partial results merge, so any corpus size scores.

Each CombineFn takes one scored row at a time (a prediction already joined with its
reference) and ends in a plain dict that goes to ``metrics.json``:

- :class:`ClassificationMetrics`: ``(true, predicted)`` labels -> accuracy, per-class
  precision / recall / F1, macro F1, confusion matrix (rows: true class, columns: predicted);
- :class:`TranslationMetrics`: ``(hypothesis, reference)`` -> corpus BLEU and chrF by
  sacrebleu, from summed sufficient statistics (the same figures as ``corpus_score`` on
  the whole corpus at once);
- :class:`DateMetrics`: ``(format, noisy, correct, valid)`` -> exact match overall, on
  clean and noisy inputs and per input format;
- :class:`NameMetrics`: ``(name, novel)`` -> novelty, share of distinct names, length
  distribution.
"""

from __future__ import annotations

import collections
from typing import Iterable, Optional, Sequence

import apache_beam as beam
import numpy as np


def _share(part: float, whole: float) -> Optional[float]:
    return round(float(part) / whole, 6) if whole else None


class ClassificationMetrics(beam.CombineFn):
    """``(true label, predicted label)`` pairs -> the classifier's report (see :func:`classification_report`)."""

    def __init__(self, classes: Sequence[str]):
        self._classes = list(classes)

    def create_accumulator(self) -> np.ndarray:
        return np.zeros((len(self._classes), len(self._classes)), dtype=np.int64)

    def add_input(self, matrix: np.ndarray, pair: tuple[int, int]) -> np.ndarray:
        matrix[pair[0], pair[1]] += 1
        return matrix

    def merge_accumulators(self, matrices: Iterable[np.ndarray]) -> np.ndarray:
        return sum(matrices, self.create_accumulator())

    def extract_output(self, matrix: np.ndarray) -> dict:
        return classification_report(matrix, self._classes)


def classification_report(matrix: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support and macro F1 of a confusion matrix.

    Macro F1 averages the classes that occur in the references or the predictions (as
    scikit-learn does); a ratio with a zero denominator counts as 0.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    rows = int(matrix.sum())
    true_counts, predicted_counts, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    per_class, f1s = [], []
    for i, name in enumerate(classes):
        precision = hits[i] / predicted_counts[i] if predicted_counts[i] else 0.0
        recall = hits[i] / true_counts[i] if true_counts[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"class": name, "precision": round(float(precision), 6), "recall": round(float(recall), 6),
                          "f1": round(float(f1), 6), "support": int(true_counts[i])})
        if true_counts[i] or predicted_counts[i]:
            f1s.append(f1)
    return {
        "rows": rows,
        "accuracy": _share(hits.sum(), rows),
        "macro_f1": round(float(np.mean(f1s)), 6) if f1s else None,
        "classes": list(classes),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


class TranslationMetrics(beam.CombineFn):
    """``(hypothesis, reference)`` pairs -> corpus BLEU and chrF (sacrebleu defaults), 0..100.

    sacrebleu scores a corpus from per-sentence sufficient statistics summed over the
    corpus; the accumulator is those sums, so workers score their share and merge.
    BLEU's are ``[hypothesis length, reference length, matches per order, n-grams per
    order]``, chrF's ``[hypothesis, reference, match]`` counts per n-gram order.
    """

    def __init__(self):
        self._metrics = None

    def _sacrebleu(self):
        """(BLEU scorer, BLEU statistics extractor, chrF scorer), built on first use."""
        if self._metrics is None:
            from sacrebleu.metrics import BLEU, CHRF

            bleu, chrf = BLEU(), CHRF()
            for metric in (bleu, chrf):
                metric.num_refs = 1  # one reference per row; the signature reports it
            # The same tokenization; the statistics do not depend on smoothing or effective
            # order (only the score does), and with these sentence_score neither warns nor alters them.
            statistics = BLEU(smooth_method="none", effective_order=True)
            self._metrics = (bleu, statistics, chrf)
        return self._metrics

    def create_accumulator(self) -> list:
        return [0, None, None]  # rows, BLEU statistics, chrF statistics

    def add_input(self, accumulator: list, pair: tuple[str, str]) -> list:
        return self.add_inputs(accumulator, [pair])

    def add_inputs(self, accumulator: list, pairs: Iterable[tuple[str, str]]) -> list:
        pairs = list(pairs)
        if not pairs:
            return accumulator
        _, bleu_statistics, chrf = self._sacrebleu()
        bleu_sums = np.zeros(2 + 2 * bleu_statistics.max_ngram_order, dtype=np.int64)
        for hypothesis, reference in pairs:
            score = bleu_statistics.sentence_score(hypothesis, [reference])
            bleu_sums += [score.sys_len, score.ref_len, *score.counts, *score.totals]
        # Private API: sacrebleu 2.6.0 has no public one for chrF's sufficient statistics
        # (CHRFScore keeps only the score) or for a score from summed statistics, and no
        # upstream issue (mjpost/sacrebleu) was found that asks for one. These are the
        # methods CHRF.corpus_score itself runs.
        chrf_sums = np.asarray(chrf._extract_corpus_statistics([h for h, _ in pairs], [[r for _, r in pairs]]),
                               dtype=np.int64).sum(axis=0)
        return self.merge_accumulators([accumulator, [len(pairs), bleu_sums, chrf_sums]])

    def merge_accumulators(self, accumulators: Iterable[list]) -> list:
        merged = self.create_accumulator()
        for rows, bleu, chrf in accumulators:
            merged[0] += rows
            merged[1] = bleu if merged[1] is None else (merged[1] if bleu is None else merged[1] + bleu)
            merged[2] = chrf if merged[2] is None else (merged[2] if chrf is None else merged[2] + chrf)
        return merged

    def extract_output(self, accumulator: list) -> dict:
        rows, bleu_stats, chrf_stats = accumulator
        bleu, _, chrf = self._sacrebleu()
        signatures = {"bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}
        if not rows:
            return {"rows": 0, "bleu": None, "chrf": None, **signatures}
        order = bleu.max_ngram_order
        sys_len, ref_len, *counts = (int(n) for n in bleu_stats)
        bleu_score = bleu.compute_bleu(counts[:order], counts[order:], sys_len, ref_len,
                                       smooth_method=bleu.smooth_method, smooth_value=bleu.smooth_value,
                                       effective_order=bleu.effective_order, max_ngram_order=order)
        return {
            "rows": rows,
            "bleu": round(float(bleu_score.score), 4),
            "chrf": round(float(chrf._compute_score_from_stats(chrf_stats.tolist()).score), 4),  # see add_inputs
            **signatures,
        }


class DateMetrics(beam.CombineFn):
    """``(format, noisy, correct, valid)`` per date -> exact match overall, clean / noisy, per format.

    ``format`` is "" when the corpus does not say (dates that were not generated); such
    rows count in the totals only. ``noisy`` is None when unknown.
    """

    def __init__(self, formats: Sequence[str] = ()):
        self._formats = list(formats)

    def create_accumulator(self) -> collections.Counter:
        return collections.Counter()

    def add_input(self, counts: collections.Counter, scored: tuple[str, Optional[bool], bool, bool]):
        fmt, noisy, correct, valid = scored
        group = "unknown" if noisy is None else ("noisy" if noisy else "clean")
        counts[("rows", fmt, group)] += 1
        counts[("correct", fmt, group)] += int(correct)
        counts["valid"] += int(valid)
        return counts

    def merge_accumulators(self, accumulators: Iterable[collections.Counter]) -> collections.Counter:
        merged = collections.Counter()
        for counts in accumulators:
            merged.update(counts)
        return merged

    def extract_output(self, counts: collections.Counter) -> dict:
        def total(what: str, fmt: Optional[str] = None, group: Optional[str] = None) -> int:
            return sum(n for key, n in counts.items() if isinstance(key, tuple) and key[0] == what
                       and (fmt is None or key[1] == fmt) and (group is None or key[2] == group))

        rows = total("rows")
        formats = self._formats + sorted({key[1] for key in counts if isinstance(key, tuple)} - set(self._formats)
                                         - {""})
        per_format = []
        for fmt in formats:
            clean, noisy = total("rows", fmt, "clean"), total("rows", fmt, "noisy")
            if clean or noisy:
                per_format.append({"format": fmt, "clean_rows": clean,
                                   "clean_exact_match": _share(total("correct", fmt, "clean"), clean),
                                   "noisy_rows": noisy,
                                   "noisy_exact_match": _share(total("correct", fmt, "noisy"), noisy)})
        return {
            "rows": rows,
            "exact_match": _share(total("correct"), rows),
            "valid_rate": _share(counts["valid"], rows),
            **{group: {"rows": total("rows", group=group),
                       "exact_match": _share(total("correct", group=group), total("rows", group=group))}
               for group in ("clean", "noisy")},
            "per_format": per_format,
        }


def length_summary(histogram: collections.Counter) -> dict:
    """Mean, min, max and the histogram (length -> count, string keys for JSON) of name lengths."""
    count = sum(histogram.values())
    if not count:
        return {"mean": None, "min": None, "max": None, "histogram": {}}
    return {"mean": round(sum(length * n for length, n in histogram.items()) / count, 4),
            "min": min(histogram), "max": max(histogram),
            "histogram": {str(length): histogram[length] for length in sorted(histogram)}}


class NameMetrics(beam.CombineFn):
    """``(name, novel)`` per sampled name -> novelty, share of distinct names, length distribution."""

    def create_accumulator(self) -> list:
        return [0, 0, set(), collections.Counter()]  # rows, novel, distinct names, lengths

    def add_input(self, accumulator: list, scored: tuple[str, bool]) -> list:
        name, novel = scored
        accumulator[0] += 1
        accumulator[1] += int(novel)
        accumulator[2].add(name.casefold())
        accumulator[3][len(name)] += 1
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list]) -> list:
        merged = self.create_accumulator()
        for rows, novel, names, lengths in accumulators:
            merged[0] += rows
            merged[1] += novel
            merged[2] |= names
            merged[3].update(lengths)
        return merged

    def extract_output(self, accumulator: list) -> dict:
        rows, novel, names, lengths = accumulator
        return {"rows": rows, "novel": _share(novel, rows), "unique": _share(len(names), rows),
                "length": length_summary(lengths)}
