"""tf.data over the preprocessing outputs: shapes from metadata.json, every row once."""

import logging
import shutil

import numpy as np
import pytest
import tensorflow as tf

from seqbeam.pipelines import layout, preprocess
from seqbeam.models.inputs import deal_files, feature_spec, load_metadata, make_dataset, shard_paths, worker_shards

from conftest import read_examples


@pytest.fixture(scope="module")
def dates_dir(tmp_path_factory):
    from seqbeam.configs.schema import config_from_dict

    out = tmp_path_factory.mktemp("inputs")
    config = config_from_dict({
        "task": {"name": "dates", "kind": "seq2seq"},
        "data": {"format": "generated", "generator": {"name": "dates", "num_rows": 500, "seed": 3}},
        "preprocess": {"tokenizer": {"level": "char"}, "max_length": 40, "max_target_length": 12,
                       "num_shards": 3, "batch_size": 128},
        "output_dir": str(out),
    })
    preprocess.run_config(config, save_main_session=False)
    return layout.data_dir(config)


def test_batches_hold_every_row_once_with_metadata_shapes(dates_dir):
    metadata = load_metadata(dates_dir)
    batches = list(make_dataset(dates_dir, "train", batch_size=64).as_numpy_iterator())
    assert batches[0]["source"].shape[1] == 40 and batches[0]["target_in"].shape[1] == 12
    assert batches[0]["source_length"].ndim == 1
    ids = np.concatenate([b["id"] for b in batches])
    assert len(ids) == len(set(ids)) == metadata["rows"]["train"]
    expected = {r["id"]: r for r in read_examples(dates_dir, "train")}
    first = batches[0]
    row = expected[first["id"][0].decode()]
    assert first["target_out"][0].tolist() == row["target_out"]
    assert int(first["target_length"][0]) == row["target_length"][0]


def test_length_window_batches_rows_of_similar_length_cut_to_the_longest(dates_dir):
    metadata = load_metadata(dates_dir)
    expected = {r["id"]: r for r in read_examples(dates_dir, "train")}
    batches = list(make_dataset(dates_dir, "train", batch_size=16, shuffle=True, seed=3, length_window=4)
                   .as_numpy_iterator())
    ids = [i.decode() for b in batches for i in b["id"]]
    assert len(ids) == len(set(ids)) == metadata["rows"]["train"]  # every row once
    spread = []
    for batch in batches:
        longest = int(batch["source_length"].max())
        assert batch["source"].shape[1] == longest  # cut to the longest
        target_width = int(batch["target_length"].max())
        assert batch["target_in"].shape[1] == batch["target_out"].shape[1] == target_width
        for i, row_id in enumerate(batch["id"]):  # only padding was cut
            row = expected[row_id.decode()]
            assert batch["source"][i].tolist() == row["source"][: batch["source"].shape[1]]
            assert sum(row["source"][batch["source"].shape[1]:]) == 0
            for name in ("target_in", "target_out"):
                assert batch[name][i].tolist() == row[name][:target_width] and sum(row[name][target_width:]) == 0
        spread.append(longest - int(batch["source_length"].min()))
    unsorted = next(make_dataset(dates_dir, "train", batch_size=16, shuffle=True, seed=3).as_numpy_iterator())
    assert np.mean(spread) < unsorted["source_length"].max() - unsorted["source_length"].min()
    with pytest.raises(ValueError, match="seq2seq"):
        make_dataset(dates_dir, "train", batch_size=16, length_window=4, metadata={**metadata, "kind": "lm"})


def test_shuffle_is_seeded_and_changes_order(dates_dir):
    def order(seed):
        ds = make_dataset(dates_dir, "train", batch_size=500, shuffle=True, seed=seed, shuffle_buffer=1000)
        return next(ds.as_numpy_iterator())["id"].tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == sorted(order(2))


def test_feature_spec_per_kind_and_errors(dates_dir, tmp_path):
    assert set(feature_spec({"kind": "lm", "max_lengths": {"tokens": 8}})) == {"tokens", "targets", "length", "id"}
    assert set(feature_spec({"kind": "classifier", "max_lengths": {"tokens": 8}})) == {"tokens", "length", "label", "id"}
    with pytest.raises(ValueError, match="unknown split"):
        make_dataset(dates_dir, "holdout", batch_size=4)
    with pytest.raises(FileNotFoundError, match="seqbeam preprocess"):
        make_dataset(str(tmp_path), "train", batch_size=4)


# --- each input pipeline its own shard files -----------------------------------------------------


def contexts(workers: int) -> list:
    return [tf.distribute.InputContext(num_input_pipelines=workers, input_pipeline_id=i, num_replicas_in_sync=workers)
            for i in range(workers)]


def ids_of(dataset) -> list[str]:
    return [value.decode() for batch in dataset.as_numpy_iterator() for value in batch["id"]]


def ids_by_file(data_dir: str, split: str) -> dict[str, set[str]]:
    """The ids of each of a split's shard files, read here one file at a time."""
    by_file = {}
    for path in shard_paths(data_dir, load_metadata(data_dir), split):
        by_file[path] = {tf.train.Example.FromString(record.numpy()).features.feature["id"].bytes_list.value[0].decode()
                         for record in tf.data.TFRecordDataset(path, compression_type="GZIP")}
    return by_file


@pytest.mark.parametrize("workers", [2, 3])
def test_each_input_pipeline_reads_whole_shard_files_of_its_own(dates_dir, workers):
    metadata = load_metadata(dates_dir)
    for split in ("train", "valid", "test"):
        by_file = ids_by_file(dates_dir, split)
        assert sum(1 for ids in by_file.values() if ids) >= workers, "the corpus needs a non-empty file per worker"
        reads = [ids_of(make_dataset(dates_dir, split, batch_size=16, input_context=c)) for c in contexts(workers)]
        assert sum(map(len, reads)) == len(set().union(*map(set, reads))) == metadata["rows"][split]
        for ids in map(set, reads):
            touched = [path for path, in_file in by_file.items() if in_file & ids]
            assert touched and set().union(*(by_file[path] for path in touched)) == ids, (split, touched)


def test_with_fewer_files_than_workers_each_record_goes_to_one_worker_with_a_warning(dates_dir, caplog):
    metadata = load_metadata(dates_dir)
    with caplog.at_level(logging.WARNING, logger="seqbeam.models.inputs"):
        reads = [ids_of(make_dataset(dates_dir, "valid", batch_size=4, input_context=c)) for c in contexts(4)]
    assert sum(map(len, reads)) == len(set().union(*map(set, reads))) == metadata["rows"]["valid"]
    assert all(reads) and max(map(len, reads)) - min(map(len, reads)) <= 1  # one record in 4 each
    assert "preprocess.num_shards >= 4" in caplog.text


def test_training_batches_of_a_worker_come_from_its_files_only(dates_dir):
    by_file = ids_by_file(dates_dir, "train")
    _, second = contexts(2)
    own = [worker_shards(list(by_file), 2, i).files for i in range(2)]
    dataset = make_dataset(dates_dir, "train", batch_size=32, shuffle=True, seed=1, repeat=True, input_context=second)
    seen = {value.decode() for batch in dataset.take(40).as_numpy_iterator() for value in batch["id"]}
    assert seen == set().union(*(by_file[path] for path in own[1]))  # 1280 draws: every one of its rows, no other
    assert not set(own[0]) & set(own[1])


def test_empty_shard_files_are_dealt_to_no_worker_and_missing_ones_fail(dates_dir, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(dates_dir, copy)
    with tf.io.TFRecordWriter(str(copy / "valid-empty.tfrecord.gz"), options="GZIP"):
        pass  # what the sink writes for a shard that got no records
    metadata = load_metadata(str(copy))
    paths = [str(copy / "valid-empty.tfrecord.gz"), *shard_paths(str(copy), metadata, "valid")]
    shares = [worker_shards(paths, 3, i) for i in range(3)]
    assert all(len(share.files) == 1 and share.record_shards == 1 for share in shares)
    assert sorted(f for share in shares for f in share.files) == sorted(paths[1:])
    with pytest.raises(FileNotFoundError, match="missing"):
        worker_shards([*paths, str(copy / "valid-gone.tfrecord.gz")], 2, 0)


def test_files_are_dealt_largest_first_to_the_least_loaded_worker():
    assert deal_files({"a": 5, "b": 3, "c": 3, "d": 1}, 2) == [["a", "d"], ["b", "c"]]
    sizes = {f"f{i}": size for i, size in enumerate(np.random.default_rng(0).integers(1, 1000, size=50))}
    loads = [sum(sizes[f] for f in files) for files in deal_files(sizes, 4)]
    assert max(loads) - min(loads) <= max(sizes.values())
    assert sorted(f for files in deal_files(sizes, 4) for f in files) == sorted(sizes)
