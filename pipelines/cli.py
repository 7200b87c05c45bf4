"""The ``seqbeam`` command line.

    seqbeam preprocess --config configs/<task>.yaml [--set key=value ...] [Beam flags]
    seqbeam train --config configs/<task>.yaml [--set key=value ...] [--no-export]
    seqbeam infer --config configs/<task>.yaml [--set key=value ...] [Beam flags]
    seqbeam generate {dates,reber} -n N -o PATH [--seed S]

Beam flags (``--runner``, ``--direct_running_mode``, ``--project``, ``--temp_location``,
``--setup_file`` ...) are passed to the pipeline untouched.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from seqbeam.pipelines.config import ConfigError

_COMMANDS = ("preprocess", "train", "infer", "generate")


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
        if command == "preprocess":
            from seqbeam.pipelines import preprocess

            preprocess.run(rest)
        elif command == "train":
            from seqbeam.pipelines import train

            train.run(rest)
        elif command == "infer":
            from seqbeam.pipelines import infer

            infer.run(rest)
        else:
            from seqbeam.pipelines import generate

            generate.run(rest)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"seqbeam {command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
