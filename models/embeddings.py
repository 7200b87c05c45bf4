"""Pretrained word vectors (a registered package, GloVe, word2vec / fastText ``.vec``) as a Keras embedding.

The emoji classifiers (Emojifier V1 / V2) start from pretrained word vectors
(:mod:`seqbeam.text.vectors`): a registered name such as ``glove-6b-50d``, whose float32
matrix is memory-mapped so that only the rows a vocabulary needs are read (all of them,
in one copy, when the vocabulary is the vectors' own), or a text file, GloVe (``word v1
... vd`` per line, no header) or word2vec / fastText ``.vec`` (a first line ``N d``),
streamed (:mod:`seqbeam.text.vector_files`) with only the lines of vocabulary words
parsed.

Row ``i`` of the resulting matrix is the vector of ``tokens[i]``, so the matrix lines up
with a :class:`~seqbeam.text.vocabulary.Vocabulary` (``vocab.tokens``). The
``<pad>`` row is zeros (``mask_zero`` embeddings ignore it anyway); the other reserved
tokens and the tokens the vectors lack get rows drawn per ``oov_init``, deterministic
from a seed.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import NamedTuple, Sequence

import keras
import numpy as np

from seqbeam.text import vector_files
from seqbeam.text.vectors import check_available, is_registered, registered_matrix, registered_words
from seqbeam.text.vocabulary import PAD, RESERVED_TOKENS

logger = logging.getLogger(__name__)

OOV_INITS = ("zeros", "uniform", "normal")
UNIFORM_LIMIT = 0.05  # U(-0.05, 0.05): the Keras default for embeddings.
FALLBACK_STDDEV = 0.1  # N(0, 0.1) when no vector was found to take statistics from.
MAX_MISSING_REPORTED = 20


@dataclasses.dataclass(frozen=True, eq=False)
class PretrainedVectors:
    """The embedding matrix of a vocabulary, read from pretrained vectors.

    Attributes:
      matrix: float32 ``[len(tokens), dim]``, row ``i`` for ``tokens[i]`` (read-only).
      dim: the vector size of the source.
      found: how many non-reserved tokens got a vector from the source.
      coverage: ``found`` over the number of non-reserved tokens (0.0 when there are none).
      missing: the first (up to 20) non-reserved tokens without a vector, in vocabulary
        order, for the log.

    Compared by identity (``eq=False``): numpy arrays have no single truth value.
    """

    matrix: np.ndarray
    dim: int
    found: int
    coverage: float
    missing: tuple[str, ...]


class _TokenIndex(NamedTuple):
    """Where each non-reserved vocabulary token sits: exactly, and by lowercase form."""

    exact: dict[str, int]
    lowered: dict[str, tuple[int, ...]]
    reserved: tuple[int, ...]


class _Found(NamedTuple):
    """The vocabulary rows that got a vector (ascending) and those vectors, float32 ``[len(rows), dim]``."""

    rows: np.ndarray
    vectors: np.ndarray
    dim: int


def load_pretrained_vectors(
    source: str,
    tokens: Sequence[str],
    *,
    oov_init: str = "normal",
    seed: int = 0,
    lowercase_lookup: bool = False,
) -> PretrainedVectors:
    """The matrix of ``tokens`` from a registered name or a GloVe / word2vec / fastText text file.

    Args:
      source: a registered name (``glove-6b-50d``: the package's memory-mapped matrix) or a
        local path or ``gs://`` URL of a text file; a ``.gz`` suffix is decompressed on the fly.
      tokens: the vocabulary, index = id (e.g. ``Vocabulary.tokens``); no duplicates.
      oov_init: how the reserved rows other than ``<pad>`` and the rows of tokens
        missing from the vectors start: ``"zeros"``, ``"uniform"`` (U(-0.05, 0.05)) or
        ``"normal"`` (per-dimension mean and std of the vectors found; N(0, 0.1) when
        none was found). ``<pad>`` is always zeros.
      seed: makes the random rows reproducible.
      lowercase_lookup: a token without an exact match takes the vector of the first
        word of the vectors equal to it once both are lowercased (for cased vectors and
        lowercased tokens). Exact matches always win.

    Returns:
      The matrix with its dim and coverage figures; one INFO line logs the coverage.

    Raises:
      VectorsNotInstalled: a registered name whose package is missing (names the extra).
      FileNotFoundError: the file does not exist.
      ValueError: unknown ``oov_init``, duplicate tokens, an empty file, a header whose
        dim disagrees with the rows, or a line with too few values (any line) or
        non-numeric / non-finite values (lines of vocabulary words; the numbers of other
        lines are never parsed). The message names the path and the line number.

    A text file is read only until every non-reserved token has an exact match, so the
    rest of a huge file is neither read nor checked.
    """
    _check_oov_init(oov_init)
    check_available(source)
    index = _index_tokens(tokens, lowercase=lowercase_lookup)
    found = _registered_rows(source, index) if is_registered(source) else _file_rows(source, index)
    vectors = _assemble(tokens, index, found, oov_init=oov_init, seed=seed)
    _log_coverage(source, vectors, total=len(index.exact))
    return vectors


def pretrained_embedding(
    vectors: PretrainedVectors,
    *,
    trainable: bool,
    mask_zero: bool = True,
    name: str = "embedding",
) -> keras.layers.Embedding:
    """A Keras ``Embedding`` layer that starts from (and, frozen, keeps) the pretrained matrix.

    The matrix is the layer's initial weights (``weights=[matrix]``), not part of its config:
    it is saved with the model's weights like any trained embedding, and the config stays a
    few hundred bytes whatever the vocabulary size.

    ``trainable=False`` suits the Emojifiers (few labelled sentences: keep GloVe's
    geometry so that words absent from training land near their synonyms);
    ``mask_zero=True`` makes ``<pad>`` (id 0) invisible to pooling and LSTMs.
    """
    vocab_size, dim = vectors.matrix.shape
    return keras.layers.Embedding(
        input_dim=vocab_size,
        output_dim=dim,
        embeddings_initializer="zeros",  # replaced by the weights: no random draw of a matrix that size
        weights=[vectors.matrix],
        trainable=trainable,
        mask_zero=mask_zero,
        name=name,
    )


def _check_oov_init(oov_init: str) -> None:
    """Rejects an unknown ``oov_init`` before any file is opened."""
    if oov_init not in OOV_INITS:
        raise ValueError(f"unknown oov_init {oov_init!r}; expected one of {OOV_INITS}")


def _index_tokens(tokens: Sequence[str], *, lowercase: bool) -> _TokenIndex:
    """Maps each non-reserved token to its row, and (optionally) each lowercase form to its rows."""
    if len(set(tokens)) != len(tokens):
        raise ValueError("tokens cannot hold the same token twice")
    exact = {token: row for row, token in enumerate(tokens) if token not in RESERVED_TOKENS}
    lowered: dict[str, tuple[int, ...]] = {}
    if lowercase:
        for token, row in exact.items():
            lowered[token.lower()] = lowered.get(token.lower(), ()) + (row,)
    reserved = tuple(row for row, token in enumerate(tokens) if token in RESERVED_TOKENS)
    return _TokenIndex(exact=exact, lowered=lowered, reserved=reserved)


def _registered_rows(name: str, index: _TokenIndex) -> _Found:
    """The rows of a registered matrix the tokens need, gathered from the memory map.

    When the tokens hold a run of the matrix's rows in order (a vocabulary made of the
    vectors' own words), the run is copied as one slice instead of row by row.
    """
    matrix = registered_matrix(name)
    words = registered_words(name)
    if len(words) != len(matrix):
        raise ValueError(f"pretrained vectors {name!r}: {len(words)} index words for {len(matrix)} matrix rows")
    position: dict[str, int] = {}
    for row, word in enumerate(words):
        position.setdefault(word, row)
    lowered: dict[str, int] = {}
    if index.lowered:
        for row, word in enumerate(words):
            lowered.setdefault(word.lower(), row)
    pairs = {}  # vocabulary row -> matrix row
    for token, row in index.exact.items():
        source_row = position.get(token)
        if source_row is None and index.lowered:
            source_row = lowered.get(token.lower())
        if source_row is not None:
            pairs[row] = source_row
    rows = np.fromiter(sorted(pairs), dtype=np.int64, count=len(pairs))
    source_rows = np.fromiter((pairs[row] for row in rows.tolist()), dtype=np.int64, count=len(pairs))
    if len(rows) and _is_run(rows) and _is_run(source_rows):
        vectors = matrix[source_rows[0]: source_rows[-1] + 1]  # a view of the memory map: no copy yet
    else:
        vectors = np.array(matrix[source_rows])
    return _Found(rows, vectors, matrix.shape[1])


def _is_run(values: np.ndarray) -> bool:
    """Whether ascending ints are consecutive."""
    return int(values[-1]) - int(values[0]) == len(values) - 1 and bool(np.all(np.diff(values) == 1))


def _file_rows(path: str, index: _TokenIndex) -> _Found:
    """One pass over a text file: the vocabulary rows found and their vectors.

    The first occurrence of a word wins; only lines whose word is wanted are parsed; exact
    matches override lowercase ones.
    """
    exact_rows: dict[int, np.ndarray] = {}
    lowered_rows: dict[int, np.ndarray] = {}
    dim = 0
    for line in vector_files.vector_lines(path):
        dim = line.dim
        if not index.exact or len(exact_rows) == len(index.exact):
            break  # every token has its exact vector: the rest of the file cannot change anything
        row = index.exact.get(line.word)
        rows = index.lowered.get(line.word.lower(), ()) if index.lowered else ()
        wanted = [r for r in rows if r not in lowered_rows]
        if (row is None or row in exact_rows) and not wanted:
            continue
        vector = vector_files.parse_vector(line, path)
        if row is not None and row not in exact_rows:
            exact_rows[row] = vector
        for r in wanted:
            lowered_rows[r] = vector
    dim = dim or vector_files.dim_of_empty_file(path)
    found_rows = {**lowered_rows, **exact_rows}
    rows = sorted(found_rows)
    vectors = np.stack([found_rows[row] for row in rows]) if rows else np.zeros((0, dim), dtype=np.float32)
    return _Found(np.array(rows, dtype=np.int64), vectors, dim)


def _assemble(
    tokens: Sequence[str],
    index: _TokenIndex,
    found: _Found,
    *,
    oov_init: str,
    seed: int,
) -> PretrainedVectors:
    """The full matrix: found rows copied, ``<pad>`` zeros, reserved and missing rows initialised."""
    matrix = np.zeros((len(tokens), found.dim), dtype=np.float32)
    matrix[found.rows] = found.vectors
    has_vector = np.zeros(len(tokens), dtype=bool)
    has_vector[found.rows] = True
    missing = [row for row in index.exact.values() if not has_vector[row]]
    to_init = sorted(missing + [row for row in index.reserved if tokens[row] != PAD])
    matrix[to_init] = _init_rows(len(to_init), found.vectors, oov_init=oov_init, seed=seed)
    matrix.flags.writeable = False
    total = len(index.exact)
    return PretrainedVectors(
        matrix=matrix,
        dim=found.dim,
        found=len(found.rows),
        coverage=len(found.rows) / total if total else 0.0,
        missing=tuple(tokens[row] for row in missing[:MAX_MISSING_REPORTED]),
    )


def _init_rows(count: int, found_matrix: np.ndarray, *, oov_init: str, seed: int) -> np.ndarray:
    """``count`` rows for reserved/missing tokens, drawn per ``oov_init`` from a seeded generator."""
    dim = found_matrix.shape[1]
    rng = np.random.default_rng(seed)
    if oov_init == "zeros":
        rows = np.zeros((count, dim))
    elif oov_init == "uniform":
        rows = rng.uniform(-UNIFORM_LIMIT, UNIFORM_LIMIT, size=(count, dim))
    elif len(found_matrix):
        mean = found_matrix.mean(axis=0, dtype=np.float64)
        std = found_matrix.std(axis=0, dtype=np.float64)
        rows = rng.normal(mean, std, size=(count, dim))
    else:
        rows = rng.normal(0.0, FALLBACK_STDDEV, size=(count, dim))
    return rows.astype(np.float32)


def _log_coverage(path: str, vectors: PretrainedVectors, *, total: int) -> None:
    """One INFO line with the coverage; the first missing tokens at DEBUG."""
    logger.info(
        "pretrained vectors %s: %s of %s tokens found (%.1f %%), dim %d",
        path, f"{vectors.found:,}", f"{total:,}", 100 * vectors.coverage, vectors.dim,
    )
    if vectors.missing:
        logger.debug("pretrained vectors %s: first missing tokens %s", path, list(vectors.missing))
