"""Batched Example serialization: byte-for-byte the messages protobuf would parse."""

import numpy as np
import pytest
import tensorflow as tf

from seqbeam.transforms.examples import serialize_int_examples, varint


def reference(features: dict, ids: list[str]) -> list[tf.train.Example]:
    examples = []
    for row, row_id in enumerate(ids):
        example = tf.train.Example()
        for name, matrix in features.items():
            example.features.feature[name].int64_list.value.extend(np.asarray(matrix)[row].tolist())
        example.features.feature["id"].bytes_list.value.append(row_id.encode("utf-8"))
        examples.append(example)
    return examples


def test_varint_matches_the_protobuf_encoding():
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(127) == b"\x7f"
    assert varint(128) == b"\x80\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(2**63 - 1) == b"\xff" * 8 + b"\x7f"


def test_parses_back_to_the_same_examples_for_values_of_every_varint_size():
    rng = np.random.default_rng(0)
    magnitudes = 2 ** rng.integers(0, 63, size=(50, 7))
    tokens = (rng.integers(0, 2**62, size=(50, 7)) % magnitudes).astype(np.int64)
    tokens[0] = 0
    tokens[1] = 2**63 - 1
    features = {"tokens": tokens, "length": rng.integers(0, 200, size=(50, 1)), "label": np.zeros((50, 1), dtype=np.int64)}
    ids = [f"file-é.csv:{i}" for i in range(50)]
    ids[3] = "x" * 300  # an id longer than one varint byte
    records = serialize_int_examples(features, ids)
    assert [tf.train.Example.FromString(r) for r in records] == reference(features, ids)


def test_long_rows_and_tf_parse_example():
    tokens = np.arange(3 * 500, dtype=np.int64).reshape(3, 500) * 1000
    records = serialize_int_examples({"tokens": tokens}, ["a", "b", "c"])
    parsed = tf.io.parse_example(
        records, {"tokens": tf.io.FixedLenFeature([500], tf.int64), "id": tf.io.FixedLenFeature([], tf.string)}
    )
    np.testing.assert_array_equal(parsed["tokens"].numpy(), tokens)
    assert parsed["id"].numpy().tolist() == [b"a", b"b", b"c"]


def test_rejects_negative_values_and_misshapen_features():
    with pytest.raises(ValueError, match="non-negative"):
        serialize_int_examples({"x": np.array([[-1]])}, ["a"])
    with pytest.raises(ValueError, match="expected shape"):
        serialize_int_examples({"x": np.zeros((2, 3))}, ["a"])
