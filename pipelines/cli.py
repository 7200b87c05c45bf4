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
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Optional, Sequence

from seqbeam.pipelines.config import ConfigError

_COMMANDS = ("run", "preprocess", "train", "infer", "evaluate", "generate")


def job_parser(prog: str, description: str, example_override: str) -> argparse.ArgumentParser:
    """The flags every job takes: ``--config`` and repeatable ``--set key=value`` overrides."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="task YAML, e.g. configs/dates.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config key, e.g. --set {example_override} (repeatable)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``seqbeam`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in _COMMANDS:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command, rest = argv[0], argv[1:]
    try:
        importlib.import_module(f"seqbeam.pipelines.{command}").run(rest)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"seqbeam {command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
