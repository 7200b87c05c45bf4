"""Pipeline options shared by the Beam jobs, and the local runner they default to.

Beam's ``DirectRunner`` first tries Prism, a Go binary it downloads from the internet,
and falls back to its in-process engine when that fails. seqbeam jobs must not reach the
network, so a job given no runner, or ``DirectRunner``, runs :class:`LocalDirectRunner`:
the DirectRunner's batch engine (the FnApiRunner) itself. It honours the DirectRunner
flags, e.g. ``--direct_running_mode=multi_processing --direct_num_workers=2``. Any other
runner (``DataflowRunner``, ``FlinkRunner``, ...) is passed through untouched.
"""

from __future__ import annotations

from typing import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

_LOCAL_RUNNER = f"{__name__}.LocalDirectRunner"
_DIRECT_NAMES = {"direct", "directrunner", "switchingdirectrunner"}


class LocalDirectRunner(PipelineRunner):
    """The DirectRunner's FnApiRunner batch engine, without the Prism download detour."""

    def run_pipeline(self, pipeline, options):
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision_info = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
        return fn_runner.FnApiRunner(provision_info=provision_info).run_pipeline(pipeline, options)


def pipeline_options(beam_args: Sequence[str], save_main_session: bool = True) -> PipelineOptions:
    """PipelineOptions from the pass-through Beam flags, with the local runner as default."""
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if standard.runner is None or standard.runner.lower() in _DIRECT_NAMES:
        standard.runner = _LOCAL_RUNNER
    options.view_as(SetupOptions).save_main_session = save_main_session
    return options
