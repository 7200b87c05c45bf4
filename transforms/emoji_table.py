"""Emoji tagging results -> the prediction table, built column by column.

What :meth:`EmojiOutputs.outcome` gives row by row, then ``pa.Table.from_pylist``, for a
whole batch at once: the model's outputs stay numpy arrays over the batch's flat
sentences (:class:`~seqbeam.transforms.sentences.SentenceBatch`), the sentence fields are
Arrow arrays with list offsets, and the emojified texts are made by Arrow's string kernels:
no Python object per row or per sentence.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.ml.inference.base import PredictionResult

from seqbeam.transforms.arrow_lines import PYTHON_WHITESPACE, python_strip
from seqbeam.transforms.sentences import SentenceBatch

_OUTPUTS = ("label", "emoji", "probability", "tokens")
# A sentence = its body, then the whitespace str.rstrip() would take off (the tail).
_WHITESPACE_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in PYTHON_WHITESPACE)
_BODY_AND_TAIL = "(?s)^(?P<body>(?:.*[^" + _WHITESPACE_CLASS + "])?)(?P<tail>[" + _WHITESPACE_CLASS + "]*)$"
# Above this many distinct lengths of trailing whitespace in a batch, tails are cut by the regex.
_MAX_TAIL_LENGTHS = 8


def emoji_outcomes_table(fmt: Any, results: list) -> tuple[Optional[pa.Table], list[dict], tuple[int, int, int]]:
    """(table, rejected records, (low confidence, truncated, flagged)) of ``(id, PredictionResult)`` pairs
    whose examples are a row's sentences and inferences lists per output (``SavedModelHandler`` on keyed rows).

    ``fmt`` is the task's ``EmojiOutputs`` (schema, threshold, token limit).
    """
    if not results:
        return None, [], (0, 0, 0)
    batch = SentenceBatch(pa.array([key for key, _ in results], pa.string()),
                          pa.array(["".join(result.example) for _, result in results], pa.string()),
                          pa.array([piece for _, result in results for piece in result.example], pa.string()),
                          np.concatenate(([0], np.cumsum([len(result.example) for _, result in results]))))
    inference = {name: np.concatenate([np.asarray(result.inference[name]) for _, result in results])
                 for name in _OUTPUTS}
    versions = pa.array([result.model_id for _, result in results], pa.string())
    return emoji_batch_table(fmt, PredictionResult(batch, inference, None), versions)


def emoji_batch_table(fmt: Any, result: PredictionResult, versions: Optional[pa.Array] = None
                      ) -> tuple[Optional[pa.Table], list[dict], tuple[int, int, int]]:
    """(table, rejected records, (low confidence, truncated, flagged)) of one result of a whole
    :class:`SentenceBatch` (its inference: an array over the batch's sentences per output).

    ``versions``: the model version of each row (default: the result's ``model_id``).
    """
    batch: SentenceBatch = result.example
    out = result.inference
    if any(len(out[name]) != len(batch.sentences) for name in _OUTPUTS):
        raise ValueError(f"the model gave {[len(out[name]) for name in _OUTPUTS]} outputs for "
                         f"{len(batch.sentences)} sentences")
    starts = batch.owners[:-1]
    longest = np.maximum.reduceat(np.asarray(out["tokens"], dtype=np.int64), starts)
    over = longest > fmt.max_tokens
    rejected = []
    if fmt.overflow == "reject" and over.any():
        for i in np.flatnonzero(over).tolist():
            record, _ = fmt.too_many_tokens(batch.ids[i].as_py(), batch.texts[i].as_py(), [int(longest[i])])
            rejected.append(record)
        kept = np.flatnonzero(~over)
        if not len(kept):
            return None, rejected, (0, 0, 0)
        indices, _ = batch.sentence_rows(kept)
        out = {name: np.asarray(out[name])[indices] for name in _OUTPUTS}
        versions = versions.take(pa.array(kept)) if versions is not None else None
        batch, over = batch.take(kept), np.zeros(len(kept), dtype=bool)
    probabilities = np.asarray(out["probability"], dtype=np.float32)
    # Compared as Python compares them: the float32 widened, not the threshold narrowed.
    wide = probabilities.astype(np.float64)
    low = int(np.count_nonzero(np.minimum.reduceat(wide, batch.owners[:-1]) < fmt.min_confidence))
    labels = pa.array(np.asarray(out["label"], dtype=np.int64))
    emojis = pa.array(np.asarray(out["emoji"], dtype=object), pa.binary()).cast(pa.string())
    sentence_type = fmt.schema.field("sentences").type
    sentences = pa.StructArray.from_arrays(
        [python_strip(batch.sentences), labels, emojis, pa.array(probabilities, pa.float32())],
        fields=list(sentence_type.value_type))
    offsets = pa.array(batch.owners.astype(np.int32))
    n = len(batch)
    columns = {
        "id": batch.ids,
        "text": batch.texts,
        "emojified_text": _emojified(batch, emojis, wide >= fmt.threshold, offsets),
        "sentences": pa.ListArray.from_arrays(offsets, sentences, type=sentence_type),
        "truncated": pa.array(over, pa.bool_()),
        "model_version": versions if versions is not None else pa.array([result.model_id] * n, pa.string()),
    }
    schema = fmt.schema
    table = pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
    return table, rejected, (low, int(np.count_nonzero(over)), 0)


def _body_and_tail(sentences: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(``s.rstrip()``, what it took off) of every sentence ``s``."""
    body = pc.utf8_rtrim(sentences, characters=PYTHON_WHITESPACE)
    tail_chars = pc.subtract(pc.utf8_length(sentences), pc.utf8_length(body)).to_numpy(zero_copy_only=False)
    lengths = np.unique(tail_chars[tail_chars > 0]).tolist()
    if len(lengths) > _MAX_TAIL_LENGTHS:
        return body, pc.extract_regex(sentences, pattern=_BODY_AND_TAIL).field("tail")
    tail = pa.array([""] * len(sentences), pa.string())
    for length in lengths:  # a slice kernel takes one length: a pass per distinct tail length
        tail = pc.if_else(pa.array(tail_chars == length), pc.utf8_slice_codeunits(sentences, -length), tail)
    return body, tail


def _emojified(batch: SentenceBatch, emojis: pa.Array, shown: np.ndarray, offsets: pa.Array) -> pa.Array:
    """``postprocess.emojify`` of every row: each sentence whose emoji is ``shown`` gets it after its
    last non-space character, its trailing whitespace kept."""
    body, tail = _body_and_tail(batch.sentences)
    tagged = pc.binary_join_element_wise(pc.binary_join_element_wise(body, emojis, " "), tail, "")
    pieces = pc.if_else(pa.array(shown, pa.bool_()), tagged, batch.sentences)
    return pc.binary_join(pa.ListArray.from_arrays(offsets, pieces), "")
