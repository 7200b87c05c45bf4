"""Emoji tagging results -> the prediction table, built column by column.

What :meth:`EmojiOutputs.outcome` gives row by row, then ``pa.Table.from_pylist``, for a
whole batch at once: one flat array per sentence field and list offsets, no dict per row
or per sentence (post-processing was about a quarter of the emoji V1 job's time).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyarrow as pa

from seqbeam.transforms.arrow_lines import python_strip
from seqbeam.transforms.postprocess import emojify


def emoji_outcomes_table(fmt: Any, results: list) -> tuple[Optional[pa.Table], list[dict], tuple[int, int, int]]:
    """(table, rejected records, (low confidence, truncated, flagged)) of ``(id, PredictionResult)`` pairs.

    ``fmt`` is the task's ``EmojiOutputs`` (schema, threshold, token limit).
    """
    keys, texts, emojified, truncated_rows, versions, counts = [], [], [], [], [], []
    pieces_flat, labels, emojis, probabilities = [], [], [], []
    rejected = []
    low = truncated = 0
    threshold, min_confidence = fmt.threshold, fmt.min_confidence
    decoded: dict[bytes, str] = {}
    for key, result in results:
        pieces, out = result.example, result.inference
        record, is_truncated = fmt.too_many_tokens(key, pieces, out["tokens"])
        if record is not None:
            rejected.append(record)
            continue
        row_emojis = [decoded.get(e) or decoded.setdefault(e, e.decode("utf-8")) for e in out["emoji"]]
        row_probabilities = out["probability"]
        n = min(len(pieces), len(row_emojis), len(row_probabilities), len(out["label"]))
        keys.append(key)
        texts.append("".join(pieces))
        emojified.append(emojify(pieces, [e if p >= threshold else None
                                          for e, p in zip(row_emojis, row_probabilities)]))
        pieces_flat.extend(pieces[:n])
        labels.extend(out["label"][:n])
        emojis.extend(row_emojis[:n])
        probabilities.extend(row_probabilities[:n])
        counts.append(n)
        truncated_rows.append(is_truncated)
        versions.append(result.model_id)
        low += min(row_probabilities) < min_confidence
        truncated += is_truncated
    if not keys:
        return None, rejected, (low, truncated, 0)
    schema = fmt.schema
    sentence_type = schema.field("sentences").type
    sentences = pa.StructArray.from_arrays(
        [python_strip(pa.array(pieces_flat, pa.string())), pa.array(labels, pa.int64()),
         pa.array(emojis, pa.string()), pa.array(probabilities, pa.float32())],
        fields=list(sentence_type.value_type))
    offsets = pa.array(np.concatenate(([0], np.cumsum(counts))).astype(np.int32))
    columns = {
        "id": pa.array(keys, pa.string()),
        "text": pa.array(texts, pa.string()),
        "emojified_text": pa.array(emojified, pa.string()),
        "sentences": pa.ListArray.from_arrays(offsets, sentences, type=sentence_type),
        "truncated": pa.array(truncated_rows, pa.bool_()),
        "model_version": pa.array(versions, pa.string()),
    }
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema), rejected, (low, truncated, 0)
