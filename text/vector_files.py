"""GloVe and word2vec / fastText ``.vec`` text files, streamed line by line.

GloVe files hold ``word v1 ... vd`` per line, no header; word2vec / fastText ``.vec`` files
start with a line ``N d``. Such files hold hundreds of thousands to millions of words, so
they are streamed (local path or ``gs://`` through Beam's ``FileSystems``; ``.gz`` and the
other compressions Beam knows are decompressed on the fly, in bounded memory) and a line's
numbers are parsed only when its word is wanted (:func:`parse_vector`): listing the words
of a file (the vocabulary side) parses no number at all.
"""

from __future__ import annotations

import contextlib
import gzip
from typing import BinaryIO, Iterator, NamedTuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_READ_CHUNK_BYTES = 1 << 20  # lines are cut from 1 MiB reads, whatever the file object.
_UTF8_BOM = b"\xef\xbb\xbf"


class VectorLine(NamedTuple):
    """One vector line of a file: where it is, its word, the raw bytes, the file's dim."""

    number: int
    word: str
    raw: bytes
    dim: int


def dim_of_empty_file(path: str) -> int:
    """The dim of a file that yielded no vector line: its header's, or an error when it has none."""
    with _open(path) as f:
        first = next(_read_lines(f), b"")
    header_dim = _header_dim(first.removeprefix(_UTF8_BOM))
    if header_dim is None:
        raise ValueError(f"{path}: no vectors and no 'N d' header; cannot tell the dim")
    return header_dim


def vector_lines(path: str) -> Iterator[VectorLine]:
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
            yield VectorLine(number, word_of(raw, dim, path, number), raw, dim)


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


def word_of(raw: bytes, dim: int, path: str, number: int) -> str:
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


def parse_vector(line: VectorLine, path: str) -> np.ndarray:
    """The float32 values of a vector line; non-numeric or non-finite values are an error."""
    values = line.raw.rsplit(None, line.dim)[1:]
    try:
        vector = np.array(values, dtype=np.float32)
    except ValueError as error:
        raise ValueError(f"{path}:{line.number}: non-numeric vector value ({error})") from None
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"{path}:{line.number}: non-finite vector value")
    return vector


def file_exists(path: str) -> bool:
    """Whether a vectors file is there (local path or ``gs://``)."""
    return FileSystems.exists(path)


def file_words(path: str, rows: int = 0) -> Iterator[str]:
    """The words of the file's vector lines in file order, the first ``rows`` of them (0: all).

    No number is parsed; the dim and header checks of :func:`vector_lines` still apply.
    """
    for count, line in enumerate(vector_lines(path), start=1):
        yield line.word
        if count == rows:
            return
