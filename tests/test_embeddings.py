"""Pretrained vectors: GloVe / .vec / .gz reading, coverage, OOV rows, errors, the Keras layer."""

from __future__ import annotations

import gzip
import logging
import tracemalloc

import keras
import numpy as np
import pytest

from seqbeam.models import embeddings
from seqbeam.models.embeddings import load_pretrained_vectors, pretrained_embedding
from seqbeam.text import vector_files
from seqbeam.text.vocabulary import PAD_ID, RESERVED_TOKENS, UNK_ID

DIM = 5


def file_vectors(words: list[str], dim: int = DIM, seed: int = 1) -> dict[str, np.ndarray]:
    """Random float32 vectors for the words, exactly representable in the written text."""
    rng = np.random.default_rng(seed)
    return {w: np.round(rng.normal(size=dim), 4).astype(np.float32) for w in words}


def write_vectors(path, vectors: dict[str, np.ndarray], header: str | None = None) -> str:
    """Writes GloVe lines (optionally after a header line); ``.gz`` paths are gzipped."""
    lines = [header] if header is not None else []
    lines += [w + " " + " ".join(f"{v:.4f}" for v in vec) for w, vec in vectors.items()]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path = str(path)
    if path.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return path


def vocab(*words: str) -> tuple[str, ...]:
    return RESERVED_TOKENS + words


@pytest.fixture
def glove(tmp_path):
    vectors = file_vectors(["the", "cat", "sat", "on", "mat", "dog"])
    return write_vectors(tmp_path / "glove.txt", vectors), vectors


@pytest.mark.parametrize("name, header", [
    ("glove.6B.5d.txt", None),
    ("wiki.en.vec", "6 5"),
    ("glove.6B.5d.txt.gz", None),
    ("cc.en.vec.gz", "6 5"),
])
def test_rows_follow_the_vocabulary(tmp_path, name, header):
    vectors = file_vectors(["the", "cat", "sat", "on", "mat", "dog"])
    path = write_vectors(tmp_path / name, vectors, header=header)
    tokens = vocab("dog", "the", "zebra", "mat")
    result = load_pretrained_vectors(path, tokens)
    assert result.matrix.dtype == np.float32 and result.matrix.shape == (8, DIM)
    assert result.dim == DIM
    for row, token in enumerate(tokens):
        if token in vectors:
            np.testing.assert_array_equal(result.matrix[row], vectors[token])
    assert result.found == 3 and result.coverage == pytest.approx(3 / 4)
    assert result.missing == ("zebra",)


def test_coverage_missing_and_log_line(glove, caplog):
    path, _ = glove
    missing = [f"m{i}" for i in range(25)]
    tokens = vocab("cat", *missing, "dog")
    with caplog.at_level(logging.INFO, logger=embeddings.__name__):
        result = load_pretrained_vectors(path, tokens)
    assert result.found == 2
    assert result.coverage == pytest.approx(2 / 27)
    assert result.missing == tuple(missing[:20])
    assert f"pretrained vectors {path}: 2 of 27 tokens found (7.4 %), dim 5" in caplog.messages


def test_pad_row_is_zeros_and_reserved_rows_are_initialised(glove):
    path, vectors = glove
    result = load_pretrained_vectors(path, vocab("cat", "<unk>x"), oov_init="uniform")
    assert not result.matrix[PAD_ID].any()
    reserved_and_missing = result.matrix[[UNK_ID, 2, 3, 5]]
    assert np.all(np.abs(reserved_and_missing) <= 0.05) and np.all(reserved_and_missing != 0)
    assert len({row.tobytes() for row in reserved_and_missing}) == 4


def test_reserved_tokens_are_never_looked_up(tmp_path):
    vectors = file_vectors(["<unk>", "<pad>", "cat"])
    path = write_vectors(tmp_path / "v.txt", vectors)
    result = load_pretrained_vectors(path, vocab("cat"), oov_init="zeros")
    assert not result.matrix[:4].any()
    assert result.found == 1 and result.coverage == 1.0


def test_zeros_init_is_exact(glove):
    path, vectors = glove
    result = load_pretrained_vectors(path, vocab("cat", "zebra"), oov_init="zeros")
    assert not result.matrix[[0, 1, 2, 3, 5]].any()
    np.testing.assert_array_equal(result.matrix[4], vectors["cat"])


def test_normal_init_follows_the_found_statistics(tmp_path):
    rng = np.random.default_rng(3)
    mean, std = np.array([2.0, -1.0, 0.0, 5.0]), np.array([0.5, 2.0, 1.0, 0.1])
    found = {f"w{i}": (mean + std * rng.normal(size=4)).astype(np.float32) for i in range(2000)}
    path = write_vectors(tmp_path / "v.txt", found)
    missing = [f"oov{i}" for i in range(3000)]
    result = load_pretrained_vectors(path, vocab(*found, *missing), oov_init="normal", seed=7)
    drawn = result.matrix[4 + len(found):]
    found_matrix = result.matrix[4: 4 + len(found)]
    np.testing.assert_allclose(drawn.mean(axis=0), found_matrix.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(drawn.std(axis=0), found_matrix.std(axis=0), rtol=0.1)


def test_normal_init_falls_back_when_nothing_is_found(glove):
    path, _ = glove
    result = load_pretrained_vectors(path, vocab(*(f"oov{i}" for i in range(2000))), seed=1)
    drawn = result.matrix[1:]
    assert abs(drawn.mean()) < 0.01 and drawn.std() == pytest.approx(0.1, rel=0.05)
    assert result.found == 0 and result.coverage == 0.0


@pytest.mark.parametrize("oov_init", ["uniform", "normal"])
def test_random_rows_are_deterministic_from_the_seed(glove, oov_init):
    path, _ = glove
    tokens = vocab("cat", "dog", "zebra", "yak")
    first = load_pretrained_vectors(path, tokens, oov_init=oov_init, seed=11).matrix
    again = load_pretrained_vectors(path, tokens, oov_init=oov_init, seed=11).matrix
    other = load_pretrained_vectors(path, tokens, oov_init=oov_init, seed=12).matrix
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[-2:], other[-2:])
    np.testing.assert_array_equal(first[4:6], other[4:6])


def test_invalid_oov_init_is_named(glove):
    with pytest.raises(ValueError, match="'glorot'"):
        load_pretrained_vectors(glove[0], vocab("cat"), oov_init="glorot")


def test_lowercase_lookup_and_exact_matches_win(tmp_path):
    vectors = file_vectors(["Paris", "London", "london", "BERLIN", "Berlin", "rome"])
    path = write_vectors(tmp_path / "cased.txt", vectors)
    tokens = vocab("paris", "london", "berlin", "rome", "madrid")
    plain = load_pretrained_vectors(path, tokens)
    assert plain.found == 2 and plain.missing == ("paris", "berlin", "madrid")
    result = load_pretrained_vectors(path, tokens, lowercase_lookup=True)
    assert result.found == 4 and result.missing == ("madrid",)
    np.testing.assert_array_equal(result.matrix[4], vectors["Paris"])
    np.testing.assert_array_equal(result.matrix[5], vectors["london"])  # exact beats the earlier "London"
    np.testing.assert_array_equal(result.matrix[6], vectors["BERLIN"])  # first lowercase match
    np.testing.assert_array_equal(result.matrix[7], vectors["rome"])


def test_first_occurrence_of_a_word_wins(tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("cat 1 2\ndog 3 4\ncat 5 6\n")
    result = load_pretrained_vectors(str(path), vocab("cat", "dog"))
    np.testing.assert_array_equal(result.matrix[4:], [[1, 2], [3, 4]])


def test_words_with_spaces_bom_crlf_and_undecodable_bytes(tmp_path):
    path = tmp_path / "840B.txt"
    path.write_bytes(
        b"\xef\xbb\xbf, 0.1 0.2 0.3\r\n"
        b"new york 1 2 3\r\n"
        b"at  name@x.com 4 5 6 \r\n"
        b"caf\xe9 7 8 9\r\n"
        b"\r\n"
        b"city 10 11 12\r\n"
    )
    result = load_pretrained_vectors(str(path), vocab(",", "new york", "city", "caf\ufffd"))
    assert result.dim == 3 and result.found == 4
    np.testing.assert_allclose(result.matrix[4:], [[0.1, 0.2, 0.3], [1, 2, 3], [10, 11, 12], [7, 8, 9]])


def test_malformed_lines_name_the_path_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("the 1 2 3\ncat 1 2\ndog 1 2 3\n")
    with pytest.raises(ValueError, match=rf"{path}:2: expected a word and 3 values"):
        load_pretrained_vectors(str(path), vocab("dog"))
    path.write_text("the 1 2 3\ncat 1 x 3\ndog 1 2 3\n")
    with pytest.raises(ValueError, match=rf"{path}:2: non-numeric"):
        load_pretrained_vectors(str(path), vocab("cat", "dog"))
    path.write_text("the 1 2 3\ncat 1 nan 3\n")
    with pytest.raises(ValueError, match=rf"{path}:2: non-finite"):
        load_pretrained_vectors(str(path), vocab("cat"))


@pytest.mark.parametrize("header", ["2 4", "2 2"])
def test_header_dim_must_match_the_rows(tmp_path, header):
    path = write_vectors(tmp_path / "bad.vec", file_vectors(["cat", "dog"], dim=3), header=header)
    with pytest.raises(ValueError, match=rf"{path}:2: the header says dim {header[-1]} but the line has 3"):
        load_pretrained_vectors(path, vocab("cat"))


def test_header_only_file_gives_its_dim_and_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.vec"
    path.write_text("0 7\n")
    result = load_pretrained_vectors(str(path), vocab("cat"), oov_init="zeros")
    assert result.dim == 7 and result.matrix.shape == (5, 7) and result.found == 0
    path.write_text("")
    with pytest.raises(ValueError, match="cannot tell the dim"):
        load_pretrained_vectors(str(path), vocab("cat"))


def test_missing_file_and_duplicate_tokens(tmp_path, glove):
    missing = str(tmp_path / "nope" / "glove.txt")
    with pytest.raises(FileNotFoundError, match=missing):
        load_pretrained_vectors(missing, vocab("cat"))
    with pytest.raises(ValueError, match="twice"):
        load_pretrained_vectors(glove[0], vocab("cat", "cat"))


def test_result_is_frozen(glove):
    result = load_pretrained_vectors(glove[0], vocab("cat"))
    with pytest.raises(AttributeError):
        result.dim = 3
    with pytest.raises(ValueError):
        result.matrix[0, 0] = 1.0


@pytest.fixture
def big_file(tmp_path):
    """200k lines of dim 8, of which only w{i * 20000} (10 words) are in the vocabulary."""
    rest = " " + " ".join(["0.125"] * 8)
    lines = [f"w{i}{rest}" for i in range(200_000)]
    wanted = [f"w{i}" for i in range(0, 200_000, 20_000)]
    for i in range(0, 200_000, 20_000):
        lines[i] = f"w{i} " + " ".join([str(i)] * 8)
    path = tmp_path / "big.txt.gz"
    with gzip.open(path, "wt", compresslevel=1) as f:
        f.write("\n".join(lines) + "\n")
    return str(path), wanted


def test_large_file_is_streamed_and_only_vocabulary_rows_are_parsed(big_file, monkeypatch):
    path, wanted = big_file
    parsed = []
    original = vector_files.parse_vector
    monkeypatch.setattr(vector_files, "parse_vector", lambda line, p: parsed.append(line.word) or original(line, p))
    tokens = vocab(*wanted, "absent")  # one absent token: the whole file is read
    result = load_pretrained_vectors(path, tokens)
    assert sorted(parsed) == sorted(wanted)
    assert result.found == 10
    np.testing.assert_array_equal(result.matrix[4 + 3], np.full(8, 60_000, dtype=np.float32))


def test_memory_stays_bounded_whatever_the_file_size(tmp_path):
    row = " " + " ".join(["-0.1234"] * 100)
    path = tmp_path / "wide.vec.gz"
    with gzip.open(path, "wt", compresslevel=1) as f:
        f.write("40000 100\n" + "".join(f"w{i}{row}\n" for i in range(40_000)))
    uncompressed_bytes = 40_000 * (len(row) + 6)  # about 32 MB, read in about 5 MB
    tracemalloc.start()
    try:
        result = load_pretrained_vectors(str(path), vocab("w7", "w39999", "absent"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.found == 2 and result.dim == 100
    assert peak < uncompressed_bytes / 4, (peak, uncompressed_bytes)


def test_reading_stops_once_every_token_is_found(big_file, monkeypatch):
    path, _ = big_file
    seen = []
    original = vector_files.word_of
    monkeypatch.setattr(vector_files, "word_of", lambda *args: seen.append(1) or original(*args))
    result = load_pretrained_vectors(path, vocab("w3", "w5"))
    assert result.coverage == 1.0 and len(seen) <= 7


def tiny_classifier(layer: keras.layers.Embedding) -> keras.Model:
    """Embedding -> GlobalAveragePooling1D -> Dense, the Emojifier-V1 shape."""
    inputs = keras.Input(shape=(4,), dtype="int32", name="tokens")
    pooled = keras.layers.GlobalAveragePooling1D(name="mean")(layer(inputs))
    outputs = keras.layers.Dense(3, activation="softmax", name="emoji")(pooled)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("trainable", [False, True])
def test_embedding_is_frozen_or_trained(glove, trainable):
    vectors = load_pretrained_vectors(glove[0], vocab("the", "cat", "sat", "dog"), seed=0)
    layer = pretrained_embedding(vectors, trainable=trainable, name="glove")
    model = tiny_classifier(layer)
    np.testing.assert_array_equal(layer.get_weights()[0], vectors.matrix)
    x = np.array([[4, 5, 6, 0], [7, 5, 0, 0]], dtype="int32")
    model.fit(x, np.array([0, 2]), epochs=1, batch_size=2, verbose=0)
    after = layer.get_weights()[0]
    assert np.array_equal(after, vectors.matrix) != trainable
    assert layer.name == "glove" and layer.mask_zero


def test_embedding_config_stays_small_and_weights_survive_a_model_save(glove, tmp_path):
    vectors = load_pretrained_vectors(glove[0], vocab("the", "cat"), seed=0)
    layer = pretrained_embedding(vectors, trainable=False, mask_zero=False)
    config = layer.get_config()
    assert len(str(config)) < 2000
    rebuilt = keras.layers.Embedding.from_config(config)
    assert (rebuilt.trainable, rebuilt.mask_zero, rebuilt.name) == (False, False, "embedding")
    model = tiny_classifier(layer)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.get_layer("embedding").get_weights()[0], vectors.matrix)


# ------------------------------------------------------------------------------ registered vectors


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A registered name backed by a package written here: a 6x4 .npy matrix and its Parquet index."""
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    from seqbeam.text import vectors

    words = ["the", "cat", "sat", "Paris", "cat", "dog"]  # a duplicate: the first row counts
    matrix = np.arange(24, dtype=np.float32).reshape(6, 4)
    root = tmp_path / "fake_vectors_pkg" / "data"
    root.mkdir(parents=True)
    np.save(root / "m.npy", matrix)
    pq.write_table(pa.table({"index": words}), root / "i.parquet")
    (tmp_path / "fake_vectors_pkg" / "__init__.py").write_text(f"ROOT = {str(root)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_vectors_pkg", raising=False)
    monkeypatch.setitem(vectors.REGISTERED, "fake-4d", vectors.RegisteredVectors(
        package="fake-vectors", module="fake_vectors_pkg", matrix="m.npy", index="i.parquet", extra="fake"))
    return "fake-4d", words, matrix


def test_registered_rows_are_gathered_from_the_memory_map(fake_package):
    name, _, matrix = fake_package
    result = load_pretrained_vectors(name, vocab("dog", "cat", "zebra", "paris"), oov_init="zeros")
    np.testing.assert_array_equal(result.matrix[4:6], matrix[[5, 1]])  # "cat": its first row, 1
    assert not result.matrix[6:].any()
    assert result.found == 2 and result.missing == ("zebra", "paris")
    cased = load_pretrained_vectors(name, vocab("paris"), lowercase_lookup=True)
    np.testing.assert_array_equal(cased.matrix[4], matrix[3])


def test_a_vocabulary_of_the_vectors_own_rows_is_one_slice(fake_package, monkeypatch):
    from seqbeam.text.vectors import vocabulary_words

    name, _, matrix = fake_package
    words = vocabulary_words(name)
    assert words == ("the", "cat", "sat", "Paris", "dog")
    assert vocabulary_words(name, rows=2) == ("the", "cat")
    result = load_pretrained_vectors(name, vocab(*words[:4], "extra"), oov_init="zeros")
    np.testing.assert_array_equal(result.matrix[4:8], matrix[:4])
    assert result.found == 4 and result.missing == ("extra",)


def test_a_missing_package_names_the_extra_that_installs_it(monkeypatch):
    from seqbeam.text import vectors

    monkeypatch.setitem(vectors.REGISTERED, "absent-vectors", vectors.RegisteredVectors(
        package="kumo-absent", module="seqbeam_absent_vectors_module", matrix="m.npy", index="i.parquet",
        extra="absent"))
    with pytest.raises(vectors.VectorsNotInstalled, match=r"kumo-absent.*pip install 'seqbeam\[absent\]'"):
        load_pretrained_vectors("absent-vectors", vocab("cat"))


def test_glove_6b_50d_resolves_from_its_package_without_network():
    """The registered GloVe 6B 50d (the glove extra): memory-mapped, a few rows read."""
    from seqbeam.text.vectors import registered_matrix, registered_words

    matrix = registered_matrix("glove-6b-50d")
    assert matrix.shape == (400_000, 50) and matrix.dtype == np.float32 and isinstance(matrix, np.memmap)
    words = registered_words("glove-6b-50d", rows=5)
    assert words == ["the", ",", ".", "of", "to"]
    result = load_pretrained_vectors("glove-6b-50d", vocab("famished", "hungry", "not-a-glove-word"))
    all_words = registered_words("glove-6b-50d")
    np.testing.assert_array_equal(result.matrix[4], matrix[all_words.index("famished")])
    assert result.found == 2 and result.missing == ("not-a-glove-word",)


def test_file_words_list_a_text_file_without_parsing_numbers(tmp_path, monkeypatch):
    from seqbeam.text.vectors import vocabulary_words

    path = write_vectors(tmp_path / "v.vec", file_vectors(["the", "<pad>", "cat", "sat"]), header="4 5")
    monkeypatch.setattr(vector_files, "parse_vector", lambda *args: pytest.fail("a number was parsed"))
    assert vocabulary_words(path) == ("the", "cat", "sat")
    assert vocabulary_words(path, rows=2) == ("the",)  # rows count file rows, the reserved one included
