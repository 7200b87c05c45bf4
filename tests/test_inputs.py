"""tf.data over the preprocessing outputs: shapes from metadata.json, every row once."""


import numpy as np
import pytest

from seqbeam.models.inputs import feature_spec, load_metadata, make_dataset
from seqbeam.pipelines import preprocess

from conftest import read_examples


@pytest.fixture(scope="module")
def dates_dir(tmp_path_factory):
    from seqbeam.pipelines.config import config_from_dict

    out = tmp_path_factory.mktemp("inputs")
    config = config_from_dict({
        "task": {"name": "dates", "kind": "seq2seq"},
        "data": {"format": "generated", "generator": {"name": "dates", "num_rows": 500, "seed": 3}},
        "preprocess": {"tokenizer": {"level": "char"}, "max_length": 40, "max_target_length": 12,
                       "num_shards": 3, "batch_size": 128},
        "output_dir": str(out),
    })
    preprocess.run_config(config, save_main_session=False)
    return preprocess.data_dir(config)


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
