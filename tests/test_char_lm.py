"""Char LM: learns a name-like distribution, samples new names in the graph."""

import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqbeam.models.char_lm import CharSampler, build_char_lm, compile_char_lm, lm_training_pairs
from seqbeam.text.vocabulary import END_ID, RESERVED_TOKENS, START_ID

LETTERS = "abdegiklmnoprstuvyz"
VOCAB = RESERVED_TOKENS + tuple(LETTERS)
ID = {token: i for i, token in enumerate(VOCAB)}
MAX_LENGTH = 16


def names(n: int, seed: int) -> list[str]:
    """Syllable names ending in -saurus or -don: a language the model can learn quickly."""
    rng = random.Random(seed)
    syllables = ["ba", "ki", "to", "ra", "me", "lu", "go", "ni", "pe", "zy"]
    out = set()
    while len(out) < n:
        out.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) + rng.choice(["saurus", "don"]))
    return sorted(out)


def records(words: list[str]) -> dict:
    tokens = np.zeros((len(words), MAX_LENGTH), np.int64)
    targets = np.zeros_like(tokens)
    for i, word in enumerate(words):
        ids = [ID[c] for c in word][: MAX_LENGTH - 1]
        tokens[i, : len(ids) + 1] = [START_ID] + ids
        targets[i, : len(ids) + 1] = ids + [END_ID]
    return {"tokens": tokens, "targets": targets}


def decode(ids) -> str:
    return "".join(VOCAB[i] for i in ids if i > 3)


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    train = names(300, seed=1)
    model = compile_char_lm(build_char_lm(vocab_size=len(VOCAB), max_length=MAX_LENGTH, units=64))
    x, y, w = lm_training_pairs({k: tf.constant(v) for k, v in records(train).items()})
    history = model.fit(x, y, sample_weight=w, batch_size=32, epochs=25, verbose=0)
    return model, train, history


def test_learns_the_language(trained):
    _, _, history = trained
    assert history.history["accuracy"][-1] > 0.6
    assert history.history["loss"][-1] < history.history["loss"][0] / 2


def test_samples_mostly_new_names_of_the_learned_shape(trained):
    model, train, _ = trained
    sampler = CharSampler(model, max_length=MAX_LENGTH)
    prompts = tf.ragged.constant([[] for _ in range(200)], dtype=tf.int64, ragged_rank=1)
    ids, log_prob = sampler.sample(prompts, tf.constant(1.0), tf.constant(0), tf.constant([1, 2], tf.int32))
    samples = [decode(row) for row in ids.numpy()]
    assert all(samples) and np.all(log_prob.numpy() < 0)
    well_formed = [s for s in samples if s.endswith(("saurus", "don"))]
    assert len(well_formed) > 0.7 * len(samples)
    novel = [s for s in well_formed if s not in set(train)]
    assert len(novel) > 0.5 * len(well_formed)


def test_sampling_is_seeded_and_top_1_is_greedy(trained):
    model, _, _ = trained
    sampler = CharSampler(model, max_length=MAX_LENGTH)
    prompts = tf.ragged.constant([[ID["b"], ID["a"]], []], dtype=tf.int64, ragged_rank=1)

    def run(temperature, top_k, seed):
        ids, _ = sampler.sample(prompts, tf.constant(temperature), tf.constant(top_k), tf.constant(seed, tf.int32))
        return ids.numpy().tolist()

    assert run(1.0, 0, [3, 4]) == run(1.0, 0, [3, 4])
    assert run(1.0, 1, [3, 4]) == run(1.0, 1, [9, 9])  # top-1 ignores the seed
    # Greedy continuation of "ba" equals step-by-step argmax of the full model.
    greedy = run(1.0, 1, [0, 0])[0]
    text = [START_ID, ID["b"], ID["a"]]
    for _ in range(MAX_LENGTH - 3):
        logits = model(np.array([text + [0] * (MAX_LENGTH - len(text))]))[0, len(text) - 1].numpy()
        logits[[0, START_ID]] = -np.inf
        nxt = int(np.argmax(logits))
        if nxt == END_ID:
            break
        text.append(nxt)
    assert decode(greedy) == decode(text[3:])


def test_validates_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        build_char_lm(vocab_size=0, max_length=8)
