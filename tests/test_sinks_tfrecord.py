"""The TFRecord framing of BatchedTFRecordSink: what TensorFlow writes, read back by TensorFlow."""

from __future__ import annotations

import glob
import gzip
import os
import random

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline

from seqbeam.transforms.sinks import BatchedTFRecordSink

# Empty, one byte, lengths around the CRC-32C block sizes, a large one, and every byte value.
RECORDS = ([b"", b"\x00", bytes(range(256)), b"seqbeam" * 1000]
           + [random.Random(n).randbytes(n) for n in (1, 7, 8, 9, 63, 64, 65, 1 << 16)])


def read_back(path: str, compression: str = "") -> list[bytes]:
    return [record.numpy() for record in tf.data.TFRecordDataset(path, compression_type=compression)]


def test_framing_is_byte_identical_to_tensorflows_writer(tmp_path):
    path = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in RECORDS:
            writer.write(record)
    with open(path, "rb") as f:
        assert BatchedTFRecordSink.frame(RECORDS) == f.read()
    assert BatchedTFRecordSink.frame([]) == b""


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_tensorflow_reads_the_framed_records_back(tmp_path, compression):
    path = str(tmp_path / "ours.tfrecord")
    framed = BatchedTFRecordSink.frame(RECORDS)
    with open(path, "wb") as f:
        f.write(gzip.compress(framed) if compression else framed)
    assert read_back(path, compression) == RECORDS


@pytest.mark.parametrize("where", ["length", "length_crc", "data", "data_crc"])
def test_tensorflow_detects_a_corrupted_byte(tmp_path, where):
    record = b"an example record"
    framed = bytearray(BatchedTFRecordSink.frame([record, b"the next one"]))
    offset = {"length": 0, "length_crc": 8, "data": 12 + 5, "data_crc": 12 + len(record)}[where]
    framed[offset] ^= 0x01
    path = str(tmp_path / "corrupted.tfrecord")
    with open(path, "wb") as f:
        f.write(bytes(framed))
    with pytest.raises(tf.errors.DataLossError):
        read_back(path)


def test_the_sink_writes_gzip_shards_that_tensorflow_reads(tmp_path):
    batches = [RECORDS[:5], [], RECORDS[5:]]
    prefix = str(tmp_path / "out" / "train")
    with TestPipeline() as p:
        _ = p | beam.Create(batches) | beam.io.Write(BatchedTFRecordSink(prefix, ".tfrecord.gz", num_shards=2))
    paths = sorted(glob.glob(prefix + "-*-of-00002.tfrecord.gz"))
    assert [os.path.basename(path) for path in paths] == ["train-00000-of-00002.tfrecord.gz",
                                                          "train-00001-of-00002.tfrecord.gz"]
    read = [record for path in paths for record in read_back(path, "GZIP")]
    assert sorted(read) == sorted(RECORDS)
