"""Pretrained word vectors (GloVe, word2vec / fastText ``.vec``) as a Keras embedding.

The emoji classifiers (Emojifier V1 / V2) start from word vectors that users bring as
text files: GloVe (``word v1 ... vd`` per line, no header) or word2vec / fastText ``.vec``
(a first line ``N d``, then the same rows). Such files hold hundreds of thousands to
millions of words, of which a task vocabulary needs a few thousand, so the file is
streamed (local path or ``gs://`` through Beam's ``FileSystems``; ``.gz`` and the other
compressions Beam knows are decompressed on the fly, in bounded memory) and only the
lines of vocabulary words have their numbers parsed; nothing else is kept.

Row ``i`` of the resulting matrix is the vector of ``tokens[i]``, so the matrix lines up
with a :class:`~seqbeam.text.vocabulary.Vocabulary` (``vocab.tokens``). The
``<pad>`` row is zeros (``mask_zero`` embeddings ignore it anyway); the other reserved
tokens and the tokens missing from the file get random rows, deterministic from a seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import logging
from typing import BinaryIO, Iterator, NamedTuple, Sequence

import keras
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from seqbeam.text.vocabulary import PAD, RESERVED_TOKENS

logger = logging.getLogger(__name__)

OOV_INITS = ("zeros", "uniform", "normal")
UNIFORM_LIMIT = 0.05  # U(-0.05, 0.05): the Keras default for embeddings.
FALLBACK_STDDEV = 0.1  # N(0, 0.1) when no vector was found to take statistics from.
MAX_MISSING_REPORTED = 20
_READ_CHUNK_BYTES = 1 << 20  # lines are cut from 1 MiB reads, whatever the file object.
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclasses.dataclass(frozen=True, eq=False)
class PretrainedVectors:
    """The embedding matrix of a vocabulary, read from a pretrained vectors file.

    Attributes:
      matrix: float32 ``[len(tokens), dim]``, row ``i`` for ``tokens[i]`` (read-only).
      dim: the vector size of the file.
      found: how many non-reserved tokens got a vector from the file.
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


class _VectorLine(NamedTuple):
    """One vector line of a file: where it is, its word, the raw bytes, the file's dim."""

    number: int
    word: str
    raw: bytes
    dim: int


class _TokenIndex(NamedTuple):
    """Where each non-reserved vocabulary token sits: exactly, and by lowercase form."""

    exact: dict[str, int]
    lowered: dict[str, tuple[int, ...]]
    reserved: tuple[int, ...]


def load_pretrained_vectors(
    path: str,
    tokens: Sequence[str],
    *,
    oov_init: str = "normal",
    seed: int = 0,
    lowercase_lookup: bool = False,
) -> PretrainedVectors:
    """Streams a GloVe or word2vec/fastText text file into the matrix of ``tokens``.

    Args:
      path: local path or ``gs://`` URL; a ``.gz`` suffix is decompressed on the fly.
      tokens: the vocabulary, index = id (e.g. ``Vocabulary.tokens``); no duplicates.
      oov_init: how the reserved rows other than ``<pad>`` and the rows of tokens
        missing from the file start: ``"zeros"``, ``"uniform"`` (U(-0.05, 0.05)) or
        ``"normal"`` (per-dimension mean and std of the vectors found; N(0, 0.1) when
        none was found). ``<pad>`` is always zeros.
      seed: makes the random rows reproducible.
      lowercase_lookup: a token without an exact match takes the vector of the first
        file word equal to it once both are lowercased (for cased files and lowercased
        tokens). Exact matches always win.

    Returns:
      The matrix with its dim and coverage figures; one INFO line logs the coverage.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: unknown ``oov_init``, duplicate tokens, an empty file, a header whose
        dim disagrees with the rows, or a line with too few values (any line) or
        non-numeric / non-finite values (lines of vocabulary words; the numbers of other
        lines are never parsed). The message names the path and the line number.

    Reading stops early once every non-reserved token has an exact match, so the rest of
    a huge file is neither read nor checked.
    """
    _check_oov_init(oov_init)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"pretrained vectors file not found: {path}")
    index = _index_tokens(tokens, lowercase=lowercase_lookup)
    dim, exact_rows, lowered_rows = _collect_vectors(path, index)
    found_rows = {**lowered_rows, **exact_rows}  # exact matches override lowercase ones
    vectors = _assemble(tokens, index, found_rows, dim, oov_init=oov_init, seed=seed)
    _log_coverage(path, vectors, total=len(index.exact))
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
        weights=[np.array(vectors.matrix)],
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


def _collect_vectors(
    path: str, index: _TokenIndex
) -> tuple[int, dict[int, np.ndarray], dict[int, np.ndarray]]:
    """One pass over the file: (dim, row -> exact-match vector, row -> lowercase-match vector).

    The first occurrence of a word wins; only lines whose word is wanted are parsed.
    """
    exact_rows: dict[int, np.ndarray] = {}
    lowered_rows: dict[int, np.ndarray] = {}
    dim = 0
    for line in _vector_lines(path):
        dim = line.dim
        if not index.exact or len(exact_rows) == len(index.exact):
            break  # every token has its exact vector: the rest of the file cannot change anything
        row = index.exact.get(line.word)
        rows = index.lowered.get(line.word.lower(), ()) if index.lowered else ()
        wanted = [r for r in rows if r not in lowered_rows]
        if (row is None or row in exact_rows) and not wanted:
            continue
        vector = _parse_vector(line, path)
        if row is not None and row not in exact_rows:
            exact_rows[row] = vector
        for r in wanted:
            lowered_rows[r] = vector
    return dim or _dim_of_empty_file(path), exact_rows, lowered_rows


def _dim_of_empty_file(path: str) -> int:
    """The dim of a file that yielded no vector line: its header's, or an error when it has none."""
    with _open(path) as f:
        first = next(_read_lines(f), b"")
    header_dim = _header_dim(first.removeprefix(_UTF8_BOM))
    if header_dim is None:
        raise ValueError(f"{path}: no vectors and no 'N d' header; cannot tell the dim")
    return header_dim


def _vector_lines(path: str) -> Iterator[_VectorLine]:
    """Every vector line of the file with its word, after a detected ``N d`` header if any.

    The dim is the header's, or else the first line's number of fields minus one (so the
    first word must hold no space, as in every published file). Blank lines are skipped;
    a line with fewer than ``dim`` values after its word is an error. A line with more
    values cannot be told from a word holding spaces, except on the first vector line,
    which must have exactly ``dim`` values (this catches a header with the wrong ``d``).
    """
    with _open(path) as f:
        dim, first_vector_line = 0, True
        for number, raw in enumerate(_read_lines(f), start=1):
            raw = raw.rstrip()
            if number == 1:
                raw = raw.removeprefix(_UTF8_BOM)
                dim = _header_dim(raw) or 0
                if dim:
                    continue
            if not raw:
                continue
            if first_vector_line:
                dim = _check_first_line(raw, dim, path, number)
                first_vector_line = False
            yield _VectorLine(number, _word_of(raw, dim, path, number), raw, dim)


def _check_first_line(raw: bytes, header_dim: int, path: str, number: int) -> int:
    """The dim, from the first vector line's field count, checked against the header's if any."""
    dim = len(raw.split()) - 1
    if dim < 1:
        raise ValueError(f"{path}:{number}: a vector line needs a word and values, got {raw[:80]!r}")
    if header_dim and dim != header_dim:
        raise ValueError(f"{path}:{number}: the header says dim {header_dim} but the line has {dim} values")
    return dim


@contextlib.contextmanager
def _open(path: str) -> Iterator[BinaryIO]:
    """The file's decompressed bytes, compression chosen by extension as Beam does.

    Gzip, by far the common case (``glove.840B.300d.txt.gz``), is decompressed here with
    :class:`gzip.GzipFile` over the raw stream: Beam's ``CompressedFile`` decompresses
    16 MiB of compressed input per refill into one buffer, which for text vectors is
    50-100 MB held at once. Other codecs (bz2, zstd, ...) go through Beam.
    """
    if CompressionTypes.detect_compression_type(path) != CompressionTypes.GZIP:
        with FileSystems.open(path) as f:
            yield f
        return
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        with gzip.GzipFile(fileobj=raw, mode="rb") as f:
            yield f


def _read_lines(f: BinaryIO) -> Iterator[bytes]:
    """Lines (without ``\\n``) cut from large reads: fast for plain, compressed and GCS files alike."""
    rest = b""
    while chunk := f.read(_READ_CHUNK_BYTES):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _header_dim(first_line: bytes) -> int | None:
    """The ``d`` of a word2vec/fastText ``N d`` header line, None when the line is not one."""
    fields = first_line.split()
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        dim = int(fields[1])
        if dim < 1:
            raise ValueError(f"header dim must be positive, got {first_line!r}")
        return dim
    return None


def _word_of(raw: bytes, dim: int, path: str, number: int) -> str:
    """The word of a vector line: everything before its last ``dim`` fields (it may hold spaces).

    The common case, one space per field and none in the word, costs one count and one find
    instead of splitting ``dim`` fields.
    """
    if raw.count(b" ") == dim and b"\t" not in raw:
        word = raw[: raw.index(b" ")]
    else:
        parts = raw.rsplit(None, dim)
        if len(parts) != dim + 1:
            raise ValueError(
                f"{path}:{number}: expected a word and {dim} values, got {len(parts)} fields"
            )
        word = parts[0]
    return word.decode("utf-8", errors="replace")


def _parse_vector(line: _VectorLine, path: str) -> np.ndarray:
    """The float32 values of a vector line; non-numeric or non-finite values are an error."""
    values = line.raw.rsplit(None, line.dim)[1:]
    try:
        vector = np.array(values, dtype=np.float32)
    except ValueError as error:
        raise ValueError(f"{path}:{line.number}: non-numeric vector value ({error})") from None
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"{path}:{line.number}: non-finite vector value")
    return vector


def _assemble(
    tokens: Sequence[str],
    index: _TokenIndex,
    found_rows: dict[int, np.ndarray],
    dim: int,
    *,
    oov_init: str,
    seed: int,
) -> PretrainedVectors:
    """The full matrix: found rows copied, ``<pad>`` zeros, reserved and missing rows initialised."""
    matrix = np.zeros((len(tokens), dim), dtype=np.float32)
    found = sorted(found_rows)
    if found:
        matrix[found] = np.stack([found_rows[row] for row in found])
    missing = [row for row in index.exact.values() if row not in found_rows]
    to_init = sorted(missing + [row for row in index.reserved if tokens[row] != PAD])
    found_matrix = matrix[found] if found else np.zeros((0, dim), dtype=np.float32)
    matrix[to_init] = _init_rows(len(to_init), found_matrix, oov_init=oov_init, seed=seed)
    matrix.flags.writeable = False
    total = len(index.exact)
    return PretrainedVectors(
        matrix=matrix,
        dim=dim,
        found=len(found),
        coverage=len(found) / total if total else 0.0,
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
