"""Dataflow Flex Template entry point: template parameters -> one seqbeam Beam job.

Parameters (deploy/flex-template/metadata.json): ``--config`` (a gs:// YAML, or a config
in the image such as ``configs/translate.yaml``), ``--stage`` (``preprocess`` or
``infer``), ``--overrides`` (``key=value;key=value``, each one a ``--set``). Every other
flag is a Beam pipeline option and passes through untouched.

On a Dataflow launch the launcher VM runs this file with ``--template_location``: the
pipeline is built and written there, and Dataflow submits it once this process exits
with status 0. The job has not run yet at that point, so this file does not call
``preprocess.run`` / ``infer.run``: they wait for the job and then read its outputs
(metadata.json, infer_summary.json), which would fail the launch. The pipelines write
those files themselves as their last step, after checking the row accounting and the
failure rate, so a template run is checked all the same.
Run anywhere else (e.g. ``python deploy/flex-template/launch.py --config configs/reber.yaml
--stage preprocess`` on a laptop), it calls them, with their checks.
"""

import argparse
import logging
import os
import sys
import tempfile


def local_config(path: str) -> str:
    """A local copy of a gs:// config; a relative path is looked up in $SEQBEAM_HOME too."""
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as src, tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False) as dst:
            dst.write(src.read())
        return dst.name
    home = os.environ.get("SEQBEAM_HOME", "")
    return path if os.path.exists(path) or not home else os.path.join(home, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--stage", required=True, choices=("preprocess", "infer"))
    parser.add_argument("--overrides", default="", help="key=value;key=value")
    args, beam_args = parser.parse_known_args(argv)
    overrides = [item.strip() for item in args.overrides.split(";") if item.strip()]
    config_path = local_config(args.config)

    from seqbeam.pipelines import infer, preprocess, serving
    from seqbeam.configs.schema import load_config
    from seqbeam.pipelines.options import pipeline_options

    templated = any(a.startswith("--template_location") for a in beam_args)
    if not templated:
        job = preprocess if args.stage == "preprocess" else infer
        job.run(["--config", config_path, *[f for o in overrides for f in ("--set", o)], *beam_args])
        return
    if not any(a.startswith("--runner") for a in beam_args):
        beam_args.append("--runner=DataflowRunner")
    config = load_config(config_path, overrides)
    if not config.output_dir.startswith("gs://"):
        raise ValueError(f"output_dir is {config.output_dir!r}: on Dataflow it must be gs:// "
                         "(add output_dir=gs://... to the overrides)")
    if not any(a.startswith("--sdk_container_image") for a in beam_args):
        logging.warning("no sdk_container_image parameter: workers without seqbeam installed will fail")

    import apache_beam as beam

    pipeline = beam.Pipeline(options=pipeline_options(beam_args, save_main_session=False))
    if args.stage == "preprocess":
        preprocess.clear_outputs(config)
        preprocess.build_pipeline(pipeline, config)
    else:
        plan = serving.plan_serving(config)  # fails now if the model is missing or of another task
        infer.clear_outputs(config)
        infer.build_pipeline(pipeline, config, plan)
    pipeline.run()  # with --template_location: writes the job file; Dataflow runs the job


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(sys.argv[1:])
