"""RunInference on exported seqbeam SavedModels: the model handler and length-aware batching.

Beam's stock TensorFlow handler loads models with ``tf.keras.models.load_model``, which
cannot read the SavedModels Keras 3 exports; :class:`SavedModelHandler` loads them with
``tf.saved_model.load`` and calls a serving signature on a batch of raw strings
(tokenization is inside the model). RunInference shares one loaded model per worker
process across its threads. Emoji rows come as whole :class:`SentenceBatch` elements,
one signature call and one result (numpy arrays over the sentences) each.

:class:`LengthBucketBatches` groups rows of similar length before the model sees them, so
a batch is not mostly padding (apache/beam#37414). Beam's own length bucketing
(``batch_length_fn``) runs only on its stateful, streaming-oriented path, which shuffles
every element; this one buffers at most ``buckets x batch size`` rows per bundle.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import posixpath
from typing import Any, Iterable, Optional, Sequence, Union

import apache_beam as beam
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.transforms import window

from seqbeam.transforms.runtime import freeze_long_lived_objects
from seqbeam.transforms.sentences import SentenceBatch

@dataclasses.dataclass(frozen=True)
class Prompt:
    """An LM prompt and the seed of the batch it is sampled in (names: a fresh name per prompt)."""

    text: str
    seed: int


Example = Union[str, Prompt]


def example_length(example: Example) -> int:
    """Characters of the example's model input, what length-aware batching groups on
    (a batch is padded to its longest input)."""
    return len(example) if type(example) is str else len(example.text)


class LoadedModel:
    """A loaded SavedModel and the signature RunInference calls (the module keeps its variables alive);
    ``takes_day_first``: the signature has a ``day_first`` input (a date model)."""

    def __init__(self, module: Any, signature: Any, version: str, takes_day_first: bool = False):
        self.module = module
        self.signature = signature
        self.version = version
        self.takes_day_first = takes_day_first


class SavedModelHandler(ModelHandler[Example, PredictionResult, LoadedModel]):
    """Runs an exported seqbeam model on batches of examples; wrap it in a KeyedModelHandler for ids,
    or give it whole :class:`SentenceBatch` elements (which hold their ids) with ``with_no_batching``.

    An example is a string or a :class:`Prompt` (``signature="sample"``, seeded by
    ``(seed, prompt.seed)``). The inference of an example is a dict of plain Python values
    (strings stay UTF-8 bytes), one per signature output named in ``outputs`` (default: all);
    ``model_id`` of each result is the model version. A date model's signature also takes
    ``day_first`` (its day-order control token, ``text/day_order.py``): every text of a batch
    gets ``day_first`` unless it carries its own token.
    """

    def __init__(self, model_path: str, signature: str = "serving_default", outputs: Sequence[str] = (),
                 beam_width: int = 0, seed: int = 0, min_batch_size: int = 32, max_batch_size: int = 256,
                 day_first: bool = False):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self._fill = beam.metrics.Metrics.distribution("infer", "batch_fill_percent")
        self._model_path = model_path
        self._signature = signature
        self._outputs = tuple(outputs)
        self._beam_width = beam_width
        self._seed = seed
        self._day_first = day_first

    def load_model(self) -> LoadedModel:
        """Loads the SavedModel once per worker process; fails naming the path and the signature."""
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

        try:
            module = tf.saved_model.load(self._model_path)
        except Exception as e:
            raise RuntimeError(f"cannot load the SavedModel at {self._model_path}: {e}") from e
        if self._signature not in module.signatures:
            raise RuntimeError(
                f"the SavedModel at {self._model_path} has no signature {self._signature!r} "
                f"(it has {', '.join(sorted(module.signatures))}): export it again with this seqbeam"
            )
        missing = set(self._outputs) - set(module.signatures[self._signature].structured_outputs)
        if missing:
            raise RuntimeError(f"signature {self._signature!r} of the SavedModel at {self._model_path} lacks the "
                               f"outputs {sorted(missing)}: export it again with this seqbeam")
        freeze_long_lived_objects()
        signature = module.signatures[self._signature]
        return LoadedModel(module, signature, model_version(self._model_path),
                           takes_day_first="day_first" in signature.structured_input_signature[1])

    def run_inference(self, batch: Union[Sequence[Example], SentenceBatch], model: LoadedModel,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        """One signature call for the whole batch.

        A :class:`SentenceBatch` (given whole, with ``with_no_batching``) gives ONE result:
        its inference maps each output to a numpy array over the batch's flat sentences.
        """
        if isinstance(batch, SentenceBatch):
            return [self._run_sentences(batch, model)]
        texts = _texts(batch)
        self._fill.update(fill_percent(texts))
        signature_outputs = self._call(model, tf_strings(texts), batch[0])
        names = self._outputs or sorted(signature_outputs)
        # Plain Python values: cheaper to slice per row, to pickle between stages and to post-process.
        columns = [signature_outputs[name].numpy().tolist() for name in names]
        inferences = [dict(zip(names, row)) for row in zip(*columns)]
        version = model.version
        return [PredictionResult(example, inference, version) for example, inference in zip(batch, inferences)]

    def _run_sentences(self, batch: SentenceBatch, model: LoadedModel) -> PredictionResult:
        lengths = pc.utf8_length(batch.sentences).to_numpy(zero_copy_only=False)
        longest = int(lengths.max(initial=0))
        self._fill.update(int(100 * lengths.sum() / (longest * len(lengths))) if longest else 100)
        signature_outputs = self._call(model, tf_strings(batch.sentences.to_numpy(zero_copy_only=False)), None)
        names = self._outputs or sorted(signature_outputs)
        return PredictionResult(batch, {name: signature_outputs[name].numpy() for name in names}, model.version)

    def _call(self, model: LoadedModel, texts: Any, first: Any) -> dict:
        """The signature's outputs for a string tensor of model inputs (``first``: the batch's first example)."""
        import tensorflow as tf

        inputs = {"text": texts}
        if self._signature == "beam_search":
            inputs["beam_width"] = tf.constant(self._beam_width, tf.int32)
        elif self._signature == "sample":
            inputs["seed"] = tf.constant([self._seed, first.seed], tf.int32)
        if model.takes_day_first:
            inputs["day_first"] = tf.fill([texts.shape[0]], self._day_first)
        return model.signature(**inputs)

    def get_num_bytes(self, batch: Union[Sequence[Example], SentenceBatch]) -> int:
        """Characters in the batch (RunInference's byte counter)."""
        if isinstance(batch, SentenceBatch):
            return int(pc.sum(pc.utf8_length(batch.sentences)).as_py() or 0)
        return sum(map(len, _texts(batch)))

    def get_metrics_namespace(self) -> str:
        return "seqbeam_infer"


def tf_strings(texts: Any) -> Any:
    """A 1-D ``tf.string`` tensor of a list or numpy array of texts."""
    import tensorflow as tf

    return tf.constant(texts, dtype=tf.string)


def _texts(batch: Sequence[Example]) -> list[str]:
    """The model inputs of a batch."""
    return [example if type(example) is str else example.text for example in batch]


class LengthBucketBatches(beam.DoFn):
    """Lists of keyed examples -> batches of up to ``batch_size`` examples of similar length.

    An example goes to the bucket of the first bound >= its length (the last bucket holds
    the rest); a bucket is emitted when full, and what is left when the bundle ends.
    """

    def __init__(self, bounds: Sequence[int], batch_size: int):
        self._bounds = list(bounds)
        self._batch_size = batch_size

    def start_bundle(self):
        self._buckets: list[list] = [[] for _ in range(len(self._bounds) + 1)]

    def process(self, keyed_examples: list[tuple[str, Example]]):
        for keyed in keyed_examples:
            bucket = self._buckets[bisect.bisect_left(self._bounds, example_length(keyed[1]))]
            bucket.append(keyed)
            if len(bucket) == self._batch_size:
                yield list(bucket)
                bucket.clear()

    def finish_bundle(self):
        for bucket in self._buckets:
            if bucket:
                yield window.GlobalWindows.windowed_value(bucket)
        self._buckets = []


def fill_percent(texts: Sequence[str]) -> int:
    """How full a batch of model inputs is: characters / (inputs x longest), in percent (100 = no padding)."""
    lengths = list(map(len, texts))
    longest = max(lengths, default=0)
    return int(100 * sum(lengths) / (longest * len(lengths))) if longest else 100


def model_version(model_path: str) -> str:
    """The version of an exported model: the name of its folder."""
    return posixpath.basename(model_path.rstrip("/"))


# Written last into an export's folder (models/export.py): a version without it is unfinished.
_COMPLETION_MARKER = "model_card.json"


def resolve_model_path(model_path: str, model_root: str) -> str:
    """The SavedModel to serve: ``model_path``, or the newest COMPLETE version under ``model_root``.

    A version is a folder named by its export time in seconds that holds ``saved_model.pb``
    and the ``model_card.json`` an export writes last. Temporary export folders
    (``.tmp-...``), and versions still being copied into place (a gs:// rename copies object
    by object) or left half-written by a crash, are never chosen.
    Fails at once, naming the path, when there is no exported model there.
    """
    if not model_path:
        model_path = _newest_complete_version(model_root)
    if not FileSystems.exists(posixpath.join(model_path, "saved_model.pb")):
        raise FileNotFoundError(f"infer.model_path: {model_path} is not a SavedModel folder (no saved_model.pb)")
    return model_path


def _newest_complete_version(model_root: str) -> str:
    """The complete version folder with the largest export time; unfinished newer ones are logged."""
    import logging

    def versions_holding(name: str) -> set[str]:
        folders = (posixpath.dirname(m.path.rstrip("/")) for m in _match(posixpath.join(model_root, "*", name)))
        return {folder for folder in folders if model_version(folder).isdigit()}

    saved = versions_holding("saved_model.pb")
    complete = saved & versions_holding(_COMPLETION_MARKER)
    if not complete:
        unfinished = f" ({len(saved)} unfinished: no {_COMPLETION_MARKER})" if saved else ""
        raise FileNotFoundError(
            f"infer.model_path: no exported model under {model_root}/{unfinished} (run `seqbeam train` first, "
            "or set infer.model_path)"
        )
    newest = max(complete, key=lambda folder: int(model_version(folder)))
    skipped = sorted(folder for folder in saved - complete if int(model_version(folder)) > int(model_version(newest)))
    if skipped:
        logging.getLogger(__name__).warning("serving %s: newer version(s) %s have no %s (export unfinished)",
                                            newest, skipped, _COMPLETION_MARKER)
    return newest


def read_model_card(model_path: str) -> dict:
    """The model_card.json written beside an export (task, max lengths, classes)."""
    card_path = posixpath.join(model_path, "model_card.json")
    try:
        with FileSystems.open(card_path) as f:
            return json.loads(f.read().decode("utf-8"))
    except Exception as e:
        raise FileNotFoundError(f"infer.model_path: cannot read {card_path}: {e}") from e


def _match(pattern: str) -> list:
    try:
        return FileSystems.match([pattern])[0].metadata_list
    except Exception:  # a folder that does not exist
        return []

