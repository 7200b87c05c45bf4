#!/usr/bin/env python
"""Translation on a real corpus: seqbeam against Apertium on the machine's English->Spanish gettext catalogs.

    python benchmarks/translate_gettext.py                      # build, train, score (minutes on 2 cores)
    python benchmarks/translate_gettext.py --quick              # 2,000 pairs, 1 epoch: checks that it runs
    python benchmarks/translate_gettext.py --set train.epochs=12 --work-dir /tmp/tg --json tg.json
    python benchmarks/translate_gettext.py --model /tmp/tg/runs/translate_gettext/model/<version>  # score it again

1. The corpus is built from the installed catalogs (``gettext_corpus.py``) into the work
   folder, never shipped; 5 % of it (``--held-out``, by a hash of the source) is held out.
2. seqbeam preprocesses and trains ``configs/translate_gettext.yaml`` (``--config``) on the
   rest, with the real jobs in this process, and exports the SavedModel.
3. The SavedModel translates the held-out sources (its serving signature on raw strings;
   a word-level model's output gets the inference job's detokenization); Apertium
   (``apertium -u eng-spa``) translates them too when it is installed, else it is skipped
   with a message. Both are scored with sacrebleu's defaults (BLEU 13a, chrF), mixed case.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from typing import Optional, Sequence

import gettext_corpus
from common import load_task, override, preprocess_and_train, serve, setup_logging, work_dir
from reporting import OtherLoad, environment, environment_line, md_table, save_json, text_table

TARGETS = {"bleu": 35.0, "train_minutes": 20.0}
APERTIUM_PAIR = "eng-spa"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The script's flags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="translate_gettext.yaml", help="task config under configs/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (repeatable), as seqbeam's --set")
    parser.add_argument("--held-out", type=float, default=5.0, help="percent of the sources held out (default 5)")
    parser.add_argument("--localedir", action="append", default=None,
                        help="locale folder holding es/LC_MESSAGES/*.mo (repeatable; default: the system's)")
    parser.add_argument("--max-pairs", type=int, default=0, help="use the first N pairs only (0: all)")
    parser.add_argument("--quick", action="store_true", help="2,000 pairs, 1 epoch: checks that everything runs")
    parser.add_argument("--no-apertium", action="store_true", help="do not run Apertium even when installed")
    parser.add_argument("--model", default=None, metavar="SAVED_MODEL",
                        help="score this exported model (trained on the same split) instead of training one")
    parser.add_argument("--work-dir", default=None, help="keep the corpus, data and model here (default: a temp dir)")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument("--samples", type=int, default=12, help="held-out translations printed (default 12)")
    parser.add_argument("-v", "--verbose", action="store_true", help="the jobs' INFO lines")
    return parser.parse_args(argv)


def build(args: argparse.Namespace, corpus_dir: str) -> dict:
    """Builds the corpus into ``corpus_dir``; returns its facts and the held-out pairs."""
    files = gettext_corpus.catalog_files("es", args.localedir)
    if not files:
        raise SystemExit("no es/LC_MESSAGES/*.mo catalog found: install packages with Spanish translations")
    pairs, skipped = gettext_corpus.build_corpus(files)
    if args.max_pairs:
        pairs = pairs[: args.max_pairs]
    train, held_out = gettext_corpus.split_corpus(pairs, args.held_out)
    os.makedirs(corpus_dir, exist_ok=True)
    gettext_corpus.write_tsv(os.path.join(corpus_dir, "train.tsv"), train)
    gettext_corpus.write_tsv(os.path.join(corpus_dir, "held_out.tsv"), held_out)
    return {"catalogs": len(files), "pairs": len(pairs), "train_pairs": len(train), "held_out_pairs": len(held_out),
            "skipped": dict(skipped.most_common()), "held_out": held_out}


def score(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """sacrebleu's corpus BLEU (13a, mixed case) and chrF, defaults."""
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)])
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    return {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2), "bleu_signature": str(bleu)}


def translate_seqbeam(model_path: str, sources: Sequence[str], word_level: bool) -> tuple[list[str], float]:
    """The SavedModel's translations of ``sources`` and its sentences per second (model loaded beforehand)."""
    from common import load_serving
    from seqbeam.transforms.postprocess import detokenize

    fn = load_serving(model_path)
    serve(fn, sources[:8], "text")  # traces the graph outside the timing
    started = time.perf_counter()
    texts = [t.decode("utf-8") for t in serve(fn, sources, "text", batch_size=128)]
    seconds = time.perf_counter() - started
    return ([detokenize(t) for t in texts] if word_level else texts), len(sources) / seconds


def translate_apertium(sources: Sequence[str], work: str) -> Optional[tuple[list[str], float]]:
    """Apertium's translations and sentences per second, or None (with a message) when it is not installed."""
    if shutil.which("apertium") is None:
        print("Apertium is not installed (apt-get install apertium-eng-spa): its column is skipped")
        return None
    path = os.path.join(work, "held_out.en.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(s + "\n" for s in sources))
    started = time.perf_counter()
    with open(path, "rb") as f:
        done = subprocess.run(["apertium", "-u", APERTIUM_PAIR], stdin=f, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    lines = done.stdout.decode("utf-8").split("\n")
    if done.returncode != 0 or len(lines) < len(sources):
        print(f"Apertium failed (exit {done.returncode}): {done.stderr.decode('utf-8', 'replace')[:300]}; skipped")
        return None
    return [" ".join(line.split()) for line in lines[: len(sources)]], len(sources) / seconds


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Builds the corpus, trains, translates, scores and prints the table."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    # The training job's per-epoch INFO lines reach EpochLog; the console handlers still print WARNING only.
    logging.getLogger("seqbeam").setLevel(logging.INFO)
    if args.quick:
        args.max_pairs = args.max_pairs or 2_000
        args.overrides = ["train.epochs=1", *args.overrides]
    env = environment("tensorflow", "tensorflow_text", "apache_beam", "sacrebleu")
    print(environment_line(env))
    with work_dir(args.work_dir, "seqbeam-gettext-") as work:
        corpus = build(args, os.path.join(work, "corpus"))
        held_out = corpus.pop("held_out")
        print(f"corpus: {corpus['pairs']:,} pairs from {corpus['catalogs']} catalogs ({corpus['train_pairs']:,} train, "
              f"{corpus['held_out_pairs']:,} held out); left out: {corpus['skipped']}")
        config = load_task(args.config, [*args.overrides, override("data.path", os.path.join(work, "corpus", "train.tsv")),
                                         override("output_dir", os.path.join(work, "runs"))])
        with OtherLoad() as load:
            run = None if args.model else preprocess_and_train(config)
        sources = [p.source for p in held_out]
        references = [p.target for p in held_out]
        hypotheses, ours_rate = translate_seqbeam(args.model or run["summary"]["model_path"], sources,
                                                  config.preprocess.tokenizer.level == "word")
        ours = {**score(hypotheses, references), **gettext_corpus.carried_share(sources, references, hypotheses),
                "sentences_per_second": round(ours_rate, 1), "model": args.model}
        if run:
            ours.update({"train_minutes": round(run["stages"]["train"] / 60, 2),
                         "preprocess_minutes": round(run["stages"]["preprocess"] / 60, 2),
                         "epochs": len(run["epoch_seconds"]) or None, "metadata_rows": run["metadata"]["rows"],
                         "truncated": run["metadata"]["truncated"], "vocab_sizes": run["metadata"]["vocab_sizes"]})
        apertium = None if args.no_apertium else translate_apertium(sources, work)
        theirs = None
        if apertium:
            theirs = {**score(apertium[0], references), **gettext_corpus.carried_share(sources, references, apertium[0]),
                      "sentences_per_second": round(apertium[1], 1)}
        report(corpus, config, ours, theirs, load, env)
        for i in range(min(args.samples, len(sources))):
            print(f"\nEN   {sources[i]}\nREF  {references[i]}\nOURS {hypotheses[i]}"
                  + (f"\nAPE  {apertium[0][i]}" if apertium else ""))
        if args.json:
            save_json(args.json, {"environment": env, "corpus": corpus, "config": args.config,
                                  "overrides": args.overrides, "seqbeam": ours, "apertium": theirs,
                                  "other_load_cores": round(load.other_cores, 2),
                                  "samples": [{"source": s, "reference": r, "seqbeam": h}
                                              for s, r, h in list(zip(sources, references, hypotheses))[:50]]})
    return 0


def report(corpus: dict, config, ours: dict, theirs: Optional[dict], load, env: dict) -> None:
    """Prints the comparison as a text table and as the README's Markdown table."""
    held = f"{corpus['held_out_pairs']:,}"
    def kept(figures: dict) -> str:
        return "-" if figures["carried_percent"] is None else f"{figures['carried_percent']:.1f} %"

    trained = "train_minutes" in ours
    rows = [["seqbeam " + config.preprocess.tokenizer.level, held, f"{ours['bleu']:.2f}", f"{ours['chrf']:.2f}",
             kept(ours), f"{ours['sentences_per_second']:,.0f}", f"{ours['train_minutes']:.1f}" if trained else "-"]]
    if theirs:
        rows.append([f"Apertium {APERTIUM_PAIR}", held, f"{theirs['bleu']:.2f}", f"{theirs['chrf']:.2f}",
                     kept(theirs), f"{theirs['sentences_per_second']:,.0f}", "-"])
    header = ["system", "held-out", "BLEU", "chrF", f"carried ({ours['carried_tokens']:,})", "sentences/s", "train min"]
    print()
    print(text_table(header, rows, right={1, 2, 3, 4, 5, 6}))
    training = (f"training <= {TARGETS['train_minutes']} min "
                f"({'ok' if ours['train_minutes'] <= TARGETS['train_minutes'] else 'MISS'}); {ours['epochs']} epochs; "
                f"other processes used {load.other_cores:.2f} of {env['cpus']} cores meanwhile"
                if trained else f"training not measured (--model {ours['model']})")
    print(f"\ntargets: BLEU >= {TARGETS['bleu']} ({'ok' if ours['bleu'] >= TARGETS['bleu'] else 'MISS'}), {training}")
    print(f"sacrebleu: {ours['bleu_signature']}")
    print()
    print("carried: the held-out sources' numbers, identifiers and acronyms that the reference keeps verbatim, "
          "kept verbatim by the system")
    print()
    print(md_table(header, rows, ["---", "---:", "---:", "---:", "---:", "---:", "---:"]))


if __name__ == "__main__":
    sys.exit(main())
