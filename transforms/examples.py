"""Batched serialization of ``tf.train.Example`` records with int64 features and an id.

Building one protobuf message per row costs ~8 µs in Python, a sixth of the whole
preprocessing job at a million rows. This module writes the same wire format for a
whole batch at once: the varint payloads of every int64 feature are encoded with numpy
for the batch, and the records are laid out in one buffer by numpy. The output parses with
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
import pyarrow as pa

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
    flat = values.astype(np.uint64).ravel()
    # 7-bit groups the largest value needs: token ids rarely need more than three.
    width = max(1, (int(flat.max()).bit_length() + 6) // 7) if flat.size else 1
    # A value takes as many bytes as its highest non-zero 7-bit group, and at least one.
    nbytes = np.ones(flat.shape, dtype=np.int64)
    for group in range(1, width):
        nbytes += flat >= np.uint64(1 << (7 * group))
    at = np.cumsum(nbytes) - nbytes
    out = np.empty(int(nbytes.sum()), dtype=np.uint8)
    for group in range(width):  # byte `group` of every value that has one, its continuation bit set unless last
        has = nbytes > group
        shift = np.uint64(7 * group)
        if group == 0:
            out[at] = ((flat & np.uint64(0x7F)) | ((nbytes > 1).astype(np.uint64) << np.uint64(7))).astype(np.uint8)
            continue
        chunk = ((flat[has] >> shift) & np.uint64(0x7F)) | ((nbytes[has] > group + 1).astype(np.uint64) << np.uint64(7))
        out[at[has] + group] = chunk.astype(np.uint8)
    return out.tobytes(), nbytes.reshape(values.shape).sum(axis=-1) if values.ndim > 1 else nbytes


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices ``starts[i] .. starts[i] + lengths[i] - 1`` of every i, back to back."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(int(ends[-1]) if len(ends) else 0)


def _by_length(lengths: np.ndarray, make) -> tuple[np.ndarray, np.ndarray]:
    """(the bytes ``make(length)`` of each row, back to back as uint8; their lengths), built once per distinct length."""
    distinct, row_of = np.unique(lengths, return_inverse=True)
    pieces = [make(int(length)) for length in distinct.tolist()]
    sizes = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    table = np.frombuffer(b"".join(pieces), dtype=np.uint8)
    row_sizes = sizes[row_of]
    return table[_ranges((np.cumsum(sizes) - sizes)[row_of], row_sizes)], row_sizes


def _utf8(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(the UTF-8 bytes of the texts back to back, as uint8; the byte length of each)."""
    array = pa.array(texts, pa.string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset:array.offset + len(array) + 1]
    data = array.buffers()[2]
    flat = np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]] if data is not None else np.zeros(0, np.uint8)
    return flat, np.diff(offsets).astype(np.int64)


def serialize_int_examples(features: Mapping[str, np.ndarray], ids: Sequence[str]) -> list[bytes]:
    """Serialized Examples, row i holding ``features[name][i]`` as int64 lists and ``id``.

    Each feature is a ``[rows, width]`` array of non-negative integers; ``ids`` become the
    ``id`` bytes feature. Every part of every record (headers, feature prefixes, varints,
    ids) is laid out in one buffer by numpy; only the final cut into records is per row.
    """
    segments = []  # (bytes of every row back to back, each row's length), in record order
    for name, matrix in features.items():
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != len(ids):
            raise ValueError(f"feature {name!r}: expected shape [{len(ids)}, width], got {matrix.shape}")
        payload, lengths = _packed_varints(matrix)
        key = name.encode("utf-8")
        segments.append(_by_length(lengths, lambda n, key=key: _int64_prefix(key, n)))
        segments.append((np.frombuffer(payload, dtype=np.uint8), lengths.astype(np.int64)))
    if not len(ids):
        return []
    encoded_ids, id_lengths = _utf8(ids)
    segments.append(_by_length(id_lengths, lambda n: _bytes_prefix(b"id", n)))
    segments.append((encoded_ids, id_lengths))
    body = np.sum([lengths for _, lengths in segments], axis=0)
    segments.insert(0, _by_length(body, _example_header))
    sizes = np.sum([lengths for _, lengths in segments], axis=0)
    ends = np.cumsum(sizes)
    out = np.empty(int(ends[-1]), dtype=np.uint8)
    at = ends - sizes
    for flat, lengths in segments:
        out[_ranges(at, lengths)] = flat
        at = at + lengths
    buffer = out.tobytes()
    return [buffer[start:end] for start, end in zip((ends - sizes).tolist(), ends.tolist())]
