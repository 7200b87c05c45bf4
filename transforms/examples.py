"""Batched serialization of ``tf.train.Example`` records with int64 features and an id.

Building one protobuf message per row costs ~8 µs in Python, a sixth of the whole
preprocessing job at a million rows. This module writes the same wire format for a
whole batch at once: the varint payloads of every int64 feature are encoded with numpy
for the batch, and each row only joins pre-built byte strings. The output parses with
``tf.train.Example.FromString`` and ``tf.io.parse_example`` like any Example (tests
compare it with messages built through the protobuf library).

Wire format (field number, wire type):
    Example   { features (1, LEN) }
    Features  { feature (1, LEN) map entry { key (1, LEN), value (2, LEN) Feature } }
    Feature   { bytes_list (1, LEN) BytesList { value (1, LEN) ... }
              | int64_list (3, LEN) Int64List { value (1, LEN) packed varints } }
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import numpy as np

def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(tag: int, payload_length: int) -> bytes:
    return bytes([tag]) + varint(payload_length)


@functools.lru_cache(maxsize=4096)
def _entry_prefix(key: bytes, list_tag: int, list_length: int, item_tag_and_length: bytes) -> bytes:
    """Bytes of a map entry ``key -> Feature`` up to the feature's values.

    ``item_tag_and_length`` is the value header inside the list: the packed-field header of
    an Int64List, or the one bytes value's header of a BytesList.
    """
    list_message_length = len(item_tag_and_length) + list_length
    feature = _length_delimited(list_tag, list_message_length)
    feature_length = len(feature) + list_message_length
    key_field = _length_delimited(0x0A, len(key)) + key
    value_header = _length_delimited(0x12, feature_length)
    entry_length = len(key_field) + len(value_header) + feature_length
    return _length_delimited(0x0A, entry_length) + key_field + value_header + feature + item_tag_and_length


@functools.lru_cache(maxsize=4096)
def _int64_prefix(key: bytes, payload_length: int) -> bytes:
    return _entry_prefix(key, 0x1A, payload_length, _length_delimited(0x0A, payload_length))


@functools.lru_cache(maxsize=4096)
def _bytes_prefix(key: bytes, value_length: int) -> bytes:
    return _entry_prefix(key, 0x0A, value_length, _length_delimited(0x0A, value_length))


@functools.lru_cache(maxsize=4096)
def _example_header(body_length: int) -> bytes:
    return _length_delimited(0x0A, body_length)


def _packed_varints(matrix: np.ndarray) -> tuple[bytes, np.ndarray]:
    """(all rows' packed varints back to back, byte length of each row's payload)."""
    values = np.ascontiguousarray(matrix, dtype=np.int64)
    if values.size and values.min() < 0:
        raise ValueError("only non-negative int64 features are supported")
    values = values.astype(np.uint64)
    # 7-bit groups the largest value needs: token ids rarely need more than three.
    width = max(1, (int(values.max()).bit_length() + 6) // 7) if values.size else 1
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = (values[..., None] >> shifts) & np.uint64(0x7F)  # [rows, cols, width]
    # A value takes as many bytes as its highest non-zero 7-bit group, and at least one.
    nonzero = groups != 0
    nbytes = np.maximum(width - np.argmax(nonzero[..., ::-1], axis=-1), 1)
    nbytes[~nonzero.any(axis=-1)] = 1
    position = np.arange(width)
    used = position < nbytes[..., None]
    continued = position < (nbytes[..., None] - 1)
    encoded = (groups.astype(np.uint8) | (continued.astype(np.uint8) << 7))[used]
    return encoded.tobytes(), nbytes.sum(axis=-1)


def serialize_int_examples(features: Mapping[str, np.ndarray], ids: Sequence[str]) -> list[bytes]:
    """Serialized Examples, row i holding ``features[name][i]`` as int64 lists and ``id``.

    Each feature is a ``[rows, width]`` array of non-negative integers; ``ids`` become the
    ``id`` bytes feature.
    """
    columns = []
    for name, matrix in features.items():
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != len(ids):
            raise ValueError(f"feature {name!r}: expected shape [{len(ids)}, width], got {matrix.shape}")
        payload, lengths = _packed_varints(matrix)
        ends = np.cumsum(lengths).tolist()
        columns.append((name.encode("utf-8"), payload, [0] + ends[:-1], ends, lengths.tolist()))
    id_key = b"id"
    records = []
    for row, row_id in enumerate(ids):
        parts = []
        for key, payload, starts, ends, lengths in columns:
            parts.append(_int64_prefix(key, lengths[row]))
            parts.append(payload[starts[row]:ends[row]])
        encoded_id = row_id.encode("utf-8")
        parts.append(_bytes_prefix(id_key, len(encoded_id)))
        parts.append(encoded_id)
        body = b"".join(parts)
        records.append(_example_header(len(body)) + body)
    return records
