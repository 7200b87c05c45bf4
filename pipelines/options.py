"""The flags every job takes, the Beam pipeline options, and the local runner they default to.

Beam's ``DirectRunner`` first tries Prism, a Go binary it downloads from the internet,
and falls back to its in-process engine when that fails. seqbeam jobs must not reach the
network, so a job given no runner, or ``DirectRunner``, runs ``FnApiRunner`` (a runner
name Beam registers): the DirectRunner's batch engine itself. It honours the DirectRunner
flags, e.g. ``--direct_running_mode=multi_processing --direct_num_workers=2``. Any other
runner (``DataflowRunner``, ``FlinkRunner``, ...) is passed through untouched.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

LOCAL_RUNNER = "FnApiRunner"
_DIRECT_NAMES = {"direct", "directrunner", "switchingdirectrunner"}


def pipeline_options(beam_args: Sequence[str], save_main_session: bool = True) -> PipelineOptions:
    """PipelineOptions from the pass-through Beam flags, with the local runner as default."""
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if standard.runner is None or standard.runner.lower() in _DIRECT_NAMES:
        standard.runner = LOCAL_RUNNER
    options.view_as(SetupOptions).save_main_session = save_main_session
    return options


def job_parser(prog: str, description: str, example_override: str) -> argparse.ArgumentParser:
    """The flags every job takes: ``--config`` and repeatable ``--set key=value`` overrides."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="task YAML, e.g. configs/dates.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config key, e.g. --set {example_override} (repeatable)")
    return parser
