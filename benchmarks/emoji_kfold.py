"""Section 3 of benchmarks/train.py: Emojifier V1 and V2 cross-validated on EMOJISET.

``--folds``-fold cross-validation of the EMOJISET train file (``--emoji-csv``:
``sentence,label[,extra columns]``, no header; read at benchmark time), repeated over
``--repeats`` fold assignments (seeds ``--seed``, ``--seed`` + 1, ...). Each fold's train part
is written as a ``sentence,label`` CSV, preprocessed with all its rows in the train split,
trained with ``configs/emoji.yaml``'s settings (V2: :data:`V2_SETTINGS` on top) and exported;
the held-out fold's raw sentences are served through the SavedModel. Variants:

- ``V1`` / ``V2``: the shipped config, pretrained vectors ``--emoji-vectors`` (GloVe 6B 50d)
  whose words make the vocabulary: a held-out word the fold's training rows never used keeps
  its vector.
- ``V1 training words`` / ``V2 training words``: the vocabulary of the fold's training rows,
  each word with its vector (``preprocess.source_vocab.vectors=''``, the behaviour before the
  vectors' vocabulary): a held-out word that training never used is ``<unk>``.
- ``course V1 (numpy)``: the course's Emojifier-V1 written in numpy on the same folds (mean of
  the vectors of the whitespace-split words the vectors know, softmax, SGD with learning rate
  0.01 one sentence at a time, 400 epochs): the reference the seqbeam V1 is held to.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import random
import statistics
from typing import Any, Optional, Sequence

from common import load_task, override, preprocess_and_train, serve
from reporting import mark, pct

EMOJI_VECTORS = "glove-6b-50d"
TARGETS = {"V1": 0.74, "V2": 0.78}
REFERENCE = {"V1": "85.7 % test (course, GloVe 50d)", "V2": "80-95 % test (course, GloVe 50d)"}
# configs/emoji.yaml trains V1; V2's settings, chosen by this cross-validation (README "The emoji task").
V2_SETTINGS = ("train.model.family=emojifier_v2", "train.epochs=50", "train.learning_rate=0.001")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the section: a model family on one kind of vocabulary."""

    name: str
    model: str  # "V1" or "V2"
    vectors_vocabulary: bool  # the vectors' words make the vocabulary (else the fold's training words)


VARIANTS = (Variant("V1", "V1", True), Variant("V2", "V2", True),
            Variant("V1 training words", "V1", False), Variant("V2 training words", "V2", False))
COURSE = "course V1 (numpy)"


def read_emojiset(path: str) -> list[tuple[str, int]]:
    """``sentence,label[,extra...]`` rows (no header, any newline convention)."""
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for record in csv.reader(f):
            if len(record) >= 2 and record[0].strip() and record[1].strip().isdigit():
                rows.append((record[0], int(record[1].strip())))
    return rows


def fold_assignment(rows: int, folds: int, seed: int) -> tuple[list[int], list[list[int]]]:
    """(the shuffled row order, the held-out rows of each fold): row ``order[i]`` is held out by fold ``i % folds``."""
    order = list(range(rows))
    random.Random(seed).shuffle(order)
    return order, [order[k::folds] for k in range(folds)]


def variant_overrides(variant: Variant, vectors: str, epochs: Optional[int]) -> list[str]:
    """The ``--set`` overrides of a variant on top of configs/emoji.yaml."""
    overrides = list(V2_SETTINGS) if variant.model == "V2" else ["train.model.family=emojifier_v1"]
    if variant.vectors_vocabulary:
        overrides += [override("preprocess.source_vocab.vectors", vectors), "train.model.pretrained_vectors=''"]
    else:
        overrides += ["preprocess.source_vocab.vectors=''", override("train.model.pretrained_vectors", vectors)]
    if epochs:
        overrides.append(f"train.epochs={epochs}")
    return overrides


def fold_accuracy(variant: Variant, rows: list[tuple[str, int]], order: list[int], held: list[int], fold_dir: str,
                  args) -> tuple[float, dict]:
    """Trains the variant on the rows not in ``held`` (in ``order``), serves ``held``: (accuracy, run)."""
    os.makedirs(fold_dir, exist_ok=True)
    train_csv = os.path.join(fold_dir, "train.csv")
    held_set = set(held)
    with open(train_csv, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["sentence", "label"])
        writer.writerows(rows[i] for i in order if i not in held_set)
    config = load_task("emoji.yaml", [
        override("output_dir", os.path.join(fold_dir, "out")), override("data.path", train_csv), "data.header=true",
        "preprocess.splits.train=1.0", "preprocess.splits.valid=0.0", "preprocess.splits.test=0.0",
        "train.early_stopping_patience=0", *variant_overrides(variant, args.emoji_vectors, args.emoji_epochs)])
    run = preprocess_and_train(config, export=True)
    labels = serve(run["summary"]["model_path"], [rows[i][0] for i in held], "label")
    return sum(int(p) == rows[i][1] for p, i in zip(labels, held)) / len(held), run


def course_v1(rows: list[tuple[str, int]], train: Sequence[int], held: Sequence[int], vectors: str,
              epochs: int = 400, learning_rate: float = 0.01, seed: int = 1) -> float:
    """Held-out accuracy of the course's Emojifier-V1, in numpy (see the module docstring)."""
    import numpy as np

    from seqbeam.text.vectors import registered_matrix, registered_words

    matrix = registered_matrix(vectors)
    position = {word: row for row, word in reversed(list(enumerate(registered_words(vectors))))}

    def average(sentence: str) -> np.ndarray:
        known = [position[w] for w in sentence.lower().split() if w in position]
        return matrix[sorted(known)].mean(axis=0) if known else np.zeros(matrix.shape[1])

    x = {i: average(rows[i][0]) for i in (*train, *held)}
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(5, matrix.shape[1])) / np.sqrt(matrix.shape[1])
    bias = np.zeros(5)
    for _ in range(epochs):
        for i in train:
            logits = weights @ x[i] + bias
            gradient = np.exp(logits - logits.max())
            gradient /= gradient.sum()
            gradient[rows[i][1]] -= 1.0
            weights -= learning_rate * np.outer(gradient, x[i])
            bias -= learning_rate * gradient
    return float(np.mean([int(np.argmax(weights @ x[i] + bias)) == rows[i][1] for i in held]))


def run_kfold(args, workdir: str) -> Optional[dict]:
    """Section 3: the variants cross-validated on EMOJISET (None when the file is missing)."""
    print(f"\n## 3. Emojifier V1/V2, {args.folds}-fold cross-validation on {args.emoji_csv} "
          f"(x{args.repeats} fold assignments), pretrained vectors {args.emoji_vectors}", flush=True)
    if not os.path.isfile(args.emoji_csv):
        print(f"  SKIPPED: {args.emoji_csv} not found")
        return None
    rows = read_emojiset(args.emoji_csv)
    if len(rows) < args.folds:
        raise RuntimeError(f"{args.emoji_csv}: {len(rows)} rows, fewer than {args.folds} folds")
    variants = [v for v in VARIANTS if v.name in args.kfold_variants]
    seeds = [args.seed + r for r in range(args.repeats)]
    results: dict[str, Any] = {"rows": len(rows), "folds": args.folds, "fold_seeds": seeds,
                               "vectors": args.emoji_vectors, "v2_settings": list(V2_SETTINGS), "models": {}}
    for variant in variants:
        per_seed = []
        for seed in seeds:
            order, folds = fold_assignment(len(rows), args.folds, seed)
            accuracies = []
            for k, held in enumerate(folds):
                fold_dir = os.path.join(workdir, "kfold", variant.name.replace(" ", "-"), f"seed{seed}", f"fold{k}")
                accuracy, run = fold_accuracy(variant, rows, order, held, fold_dir, args)
                accuracies.append(accuracy)
                stages = run["stages"]
                print(f"  {variant.name} seed {seed} fold {k + 1}/{args.folds}: train {run['metadata']['rows']['train']} "
                      f"rows (vocabulary {run['metadata']['vocab_sizes']['tokens']:,}), held out {len(held)}: accuracy "
                      f"{pct(accuracy, 1)}  [{run['summary']['epochs_run']} epochs, preprocess "
                      f"{stages['preprocess']:.1f} s, train {stages['train']:.1f} s, export {stages['export']:.1f} s]",
                      flush=True)
            per_seed.append(accuracies)
        results["models"][variant.name] = _summary(variant.name, per_seed, TARGETS.get(variant.name))
    if COURSE in args.kfold_variants:
        per_seed = []
        for seed in seeds:
            order, folds = fold_assignment(len(rows), args.folds, seed)
            per_seed.append([course_v1(rows, [i for i in order if i not in set(held)], held, args.emoji_vectors)
                             for held in folds])
        results["models"][COURSE] = _summary(COURSE, per_seed, None)
    return results


def _summary(name: str, per_seed: list[list[float]], target: Optional[float]) -> dict:
    """Prints and returns a variant's per-fold accuracies, mean per fold assignment and overall mean."""
    means = [statistics.fmean(accuracies) for accuracies in per_seed]
    mean = statistics.fmean(means)
    for seed_index, accuracies in enumerate(per_seed):
        print(f"  {name}, fold assignment {seed_index + 1}: folds {' / '.join(f'{a:.2f}' for a in accuracies)}, "
              f"mean {pct(means[seed_index], 1)}")
    target_text = f"; target >= {100 * target:g} %: {mark(mean, target)}" if target else ""
    print(f"  {name}: {pct(mean, 1)} mean over {len(per_seed)} fold assignment(s){target_text}", flush=True)
    return {"fold_accuracy": per_seed, "mean_per_assignment": means, "mean": mean, "target": target}


def headline_rows(kfold: Optional[dict]) -> list[list[str]]:
    """The section's lines in the headline table."""
    if not kfold:
        return []
    rows = []
    for name, m in kfold["models"].items():
        model = name.split()[0] if not name.startswith("course") else "V1"
        reference = (f">= {100 * m['target']:g} % {mark(m['mean'], m['target'])}; " if m["target"] else "") + \
            REFERENCE[model]
        folds = " / ".join(f"{a:.2f}" for a in m["fold_accuracy"][0])
        rows.append(["emoji k-fold", f"{name} ({kfold['folds']} folds x{len(kfold['fold_seeds'])}; first: {folds})",
                     pct(m["mean"], 1), reference])
    return rows
