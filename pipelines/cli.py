"""The ``seqbeam`` command line.

    seqbeam run --config configs/<task>.yaml [--force] [--stages S,...] [--set key=value ...] [Beam flags]
    seqbeam preprocess --config configs/<task>.yaml [--set key=value ...] [Beam flags]
    seqbeam train --config configs/<task>.yaml [--set key=value ...] [--no-export]
    seqbeam infer --config configs/<task>.yaml [--set key=value ...] [Beam flags]
    seqbeam evaluate --config configs/<task>.yaml [--set key=value ...] [Beam flags]
    seqbeam generate {dates,reber} -n N -o PATH [--seed S]

`run` chains preprocess -> train -> infer -> evaluate (skipping the stages that are up to
date for the config) and writes <output_dir>/<task>/report.html.

Beam flags (``--runner``, ``--direct_running_mode``, ``--project``, ``--temp_location``,
``--setup_file`` ...) are passed to the pipeline untouched.

Quiet by default: seqbeam's own progress lines and summaries, warnings and errors. ``-v``
(``--verbose``, anywhere after the command) brings back every INFO log (Beam, TensorFlow,
Keras) and TensorFlow's C++ start-up lines.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Optional, Sequence

from seqbeam.configs.schema import ConfigError

_COMMANDS = ("run", "preprocess", "train", "infer", "evaluate", "generate")


_VERBOSE = ("-v", "--verbose")


def configure_logging(verbose: bool, tensorflow: bool = True) -> None:
    """seqbeam's INFO lines and everyone's warnings; with ``verbose``, every INFO line.

    ``tensorflow``: the command will load TensorFlow, which is then loaded here, quietly.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("seqbeam").setLevel(logging.INFO)
    if not verbose:
        # The local runner's workers (multi_processing) send their log lines to this logger.
        relay = logging.getLogger("apache_beam.runners.portability.local_job_service")
        relay.setLevel(logging.INFO)
        relay.addFilter(_OursOrErrors())
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if tensorflow:
            _load_tensorflow_quietly()


class _OursOrErrors(logging.Filter):
    """Lets a relayed worker line through when seqbeam's code logged it, or when it is an error.

    The SDK workers' own warnings (e.g. "No semi_persistent_directory found", one per
    worker) are start-up noise; ``-v`` shows them.
    """

    def __init__(self):
        super().__init__()
        import seqbeam

        self._our_folders = _package_folders(seqbeam.__path__[0])

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        text = record.getMessage()
        return any(f'log_location: "{folder}' in text for folder in self._our_folders)


def _package_folders(seqbeam_folder: str) -> tuple[str, ...]:
    """The folders of seqbeam's subpackages (an editable install keeps them beside ``seqbeam/``)."""
    import importlib

    names = ("configs", "text", "transforms", "models", "pipelines")
    folders = [seqbeam_folder] + [importlib.import_module(f"seqbeam.{name}").__path__[0] for name in names]
    return tuple(os.path.join(folder, "") for folder in folders)


def _load_tensorflow_quietly() -> None:
    """Loads TensorFlow with the process's stderr pointed at /dev/null.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing) are logged by absl before absl's
    log is initialised, and such lines ignore ``TF_CPP_MIN_LOG_LEVEL``
    (https://github.com/tensorflow/tensorflow/pull/102212), so they are hidden at the file
    descriptor while TensorFlow and its devices load. Under ``TF_CONFIG`` the devices are
    left alone: a multi-worker strategy must configure them itself, before anything else.
    A failed import still raises, after stderr is back.
    """
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (its ops load once, here)

        if not os.environ.get("TF_CONFIG"):
            tf.config.list_logical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``seqbeam`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in _COMMANDS:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], [arg for arg in argv[1:] if arg not in _VERBOSE]
    configure_logging(verbose=len(rest) < len(argv) - 1, tensorflow=command != "generate")
    try:
        importlib.import_module(f"seqbeam.pipelines.{command}").run(rest)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"seqbeam {command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
