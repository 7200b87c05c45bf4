"""Multi-worker data-parallel training of a compiled Keras 3 model, without ``Model.fit``.

Keras 3's ``Model.fit`` does not run under ``tf.distribute.MultiWorkerMirroredStrategy``
(keras-team/keras#20585: the first batch is reduced as one nest, then per-replica metric
reductions fail). :func:`train_multi_worker` is the custom distributed loop that replaces
it: ``strategy.run`` of a ``tf.function`` train step, the loss of each replica scaled by
the *global* batch, gradients all-reduced by the optimizer, one checkpoint per finished
epoch so that a killed cluster restarted with the same command resumes from there.

Every worker runs the same program with its own ``TF_CONFIG``; the strategy must be the
first TensorFlow thing the process creates (collective ops are configured at start-up)::

    strategy = tf.distribute.MultiWorkerMirroredStrategy()

    def model_fn():  # called inside strategy.scope(); returns a compiled model
        return build_model(config, metadata, data_dir)

    def dataset_fn(split, repeat):  # one input pipeline per worker: its own shard files, batches of one replica
        def make(context):
            return make_dataset(data_dir, split, batch_size=context.get_per_replica_batch_size(global_batch_size),
                                repeat=repeat, seed=7, input_context=context)
        return make

    result = train_multi_worker(model_fn, dataset_fn("train", True), strategy=strategy, epochs=3,
                                steps_per_epoch=100, checkpoint_dir="gs://bucket/task/train/checkpoints",
                                validation=dataset_fn("valid", False))
    result["history"]  # {"loss": [...], "accuracy": [...], "val_loss": [...], ...} like History.history
    evaluate_multi_worker(result["model"], dataset_fn("test", False), strategy=strategy)  # {"loss", "accuracy"}

The loss follows the compiled loss's own ``"sum_over_batch_size"`` reduction, applied to
the global batch as if it ran on one device: the per-example loss (sample weights and
output masks applied) is averaged with ``tf.nn.compute_average_loss`` over the global
batch size; when the model's output carries a Keras mask (sequence models with
``mask_zero``), the denominator is the number of unmasked positions of the whole global
batch, as ``Model.fit`` computes it on one device.

Validation and evaluation are one pass over FINITE datasets: every example counted once,
whatever each worker holds. The workers step together until the last of them runs out
(``get_next_as_optional`` agrees across the cluster; a worker with nothing left steps on an
empty batch), and the loss is ``sum(global batch loss x its examples) / examples``, as
``Model.evaluate`` weighs its batches: the mean over the examples for per-example losses.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Callable, Optional

import keras
import tensorflow as tf

_LOG = logging.getLogger(__name__)

DatasetFn = Callable[[tf.distribute.InputContext], tf.data.Dataset]
_REDUCTIONS = ("sum_over_batch_size", "mean")


def is_chief(tf_config: Optional[dict]) -> bool:
    """Whether the task that ``tf_config`` (the parsed ``TF_CONFIG``) describes is the chief.

    The chief is the ``chief`` task when the cluster has one, otherwise ``worker`` 0; a
    process without a cluster (no or empty ``TF_CONFIG``) is its own chief.

    >>> is_chief({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}})
    True
    >>> is_chief({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}})
    False
    """
    if not tf_config or not tf_config.get("cluster"):
        return True
    task = tf_config.get("task") or {}
    task_type, index = task.get("type"), int(task.get("index", 0))
    if "chief" in tf_config["cluster"]:
        return task_type == "chief"
    return task_type == "worker" and index == 0


def _task_of(strategy: tf.distribute.Strategy) -> tuple[Optional[str], int]:
    """(task type, index) of this process in the strategy's cluster; (None, 0) without one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def _strategy_is_chief(strategy: tf.distribute.Strategy) -> bool:
    task_type, task_id = _task_of(strategy)
    if task_type is None:
        return True
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return is_chief({"cluster": cluster, "task": {"type": task_type, "index": task_id}})


def _unreduced_loss(model: keras.Model) -> keras.losses.Loss:
    """The model's compiled loss with ``reduction=None``: one weighted, masked value per output position."""
    loss = model.loss
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    if loss is None or isinstance(loss, (dict, list, tuple)):
        raise ValueError(f"train_multi_worker needs a model compiled with one loss for one output, got {loss!r}")
    if isinstance(loss, str):
        loss = keras.losses.get(loss)  # a function ("mse") or a Loss ("BinaryCrossentropy")
    if isinstance(loss, keras.losses.Loss):
        if loss.reduction not in _REDUCTIONS:
            raise ValueError(f"the compiled loss must reduce with one of {_REDUCTIONS}: the global batch average "
                             f"is computed here; got reduction={loss.reduction!r}")
        # A copy with the public ``reduction`` attribute changed: rebuilding it from
        # get_config() would lose its dtype (Loss.get_config leaves it out).
        unreduced = copy.copy(loss)
        unreduced.reduction = None
        return unreduced
    return _FunctionLoss(loss)


class _FunctionLoss(keras.losses.Loss):
    """A loss given to ``compile`` as a name or function, as a ``keras.losses.Loss`` without reduction.

    As ``compile`` does for a loss function, ``y_true`` and ``y_pred`` whose ranks differ by
    one trailing axis of size 1 are aligned first (e.g. labels ``[batch]``, outputs ``[batch, 1]``).
    """

    def __init__(self, fn: Callable):
        super().__init__(name=getattr(fn, "__name__", "loss"), reduction=None)
        self._fn = fn

    def call(self, y_true, y_pred):
        y_true, y_pred = _aligned(y_true, y_pred)
        y_pred, y_true = _aligned(y_pred, y_true)
        return self._fn(y_true, y_pred)


def _aligned(a, b) -> tuple:
    """(a, b) with the trailing size-1 axis that ``b`` has beyond ``a``'s rank matched: ``a``
    expanded when it is a vector, ``b`` squeezed otherwise."""
    if len(b.shape) == len(a.shape) + 1 and b.shape[-1] == 1:
        if len(a.shape) == 1:
            return keras.ops.expand_dims(a, -1), b
        return a, keras.ops.squeeze(b, -1)
    return a, b


class _OutputMask(keras.layers.Layer):
    """The Keras mask that travels with a tensor (None without one), read as a layer reads it.

    Keras passes the mask of a layer's input to the ``mask`` argument of its ``call``: the
    public way to see the mask of a model's output (e.g. from ``Embedding(mask_zero=True)``),
    which the compiled loss applies. The layer has no weights and attaches no mask itself.
    """

    def __init__(self):
        super().__init__(name="output_mask", autocast=False)
        self.supports_masking = True  # it consumes the mask: no "destroys the mask" warning

    def call(self, inputs, mask=None):
        return mask

    def compute_mask(self, inputs, previous_mask=None):
        return None


def _global_average_loss(loss_fn: keras.losses.Loss, model: keras.Model, y, y_pred, sample_weight,
                         global_batch_size: Optional[int], mask: Optional[tf.Tensor]) -> tf.Tensor:
    """This replica's share of the global batch's loss (call in replica context).

    ``mask`` is the Keras mask of ``y_pred`` (see :class:`_OutputMask`), or None. Summed over
    the replicas (the optimizer all-reduces gradients with SUM), the shares give the loss of
    the whole global batch, regularization losses included once.
    """
    values = loss_fn(y, y_pred, sample_weight=sample_weight)  # [batch, ...], weights and mask applied
    values = tf.cast(values, tf.float32)
    if values.shape.rank == 0:
        raise ValueError("the compiled loss returned a scalar with reduction=None; per-example values are needed")
    if mask is None:
        # "sum_over_batch_size" divides by every element: per example, the mean over its positions.
        per_example = tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)
        loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
    else:
        # With an output mask, Keras divides by the unmasked positions; over the global batch
        # that count is a sum over all replicas.
        positions = tf.stop_gradient(tf.reduce_sum(_broadcast_mask(mask, values)))
        global_positions = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, positions)
        loss = tf.math.divide_no_nan(tf.reduce_sum(values), global_positions)
    if model.losses:
        loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(l, tf.float32) for l in model.losses]))
    return loss


def _broadcast_mask(mask: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """The Keras mask as 0/1 floats of the shape of ``values`` (as Keras aligns them)."""
    mask = tf.cast(mask, values.dtype)
    if mask.shape.rank == values.shape.rank + 1 and mask.shape[-1] == 1:
        mask = tf.squeeze(mask, axis=-1)
    while mask.shape.rank < values.shape.rank:
        mask = tf.expand_dims(mask, axis=-1)
    return mask * tf.ones_like(values)


_AMBIGUOUS_METRICS = ("accuracy", "acc", "crossentropy", "ce")


def _compiled_metrics(model: keras.Model) -> list[tuple[keras.metrics.Metric, bool]]:
    """Fresh copies of the model's compiled metrics as (metric, weighted); call inside the strategy scope."""
    config = model.get_compile_config() or {}
    metrics = []
    for key, weighted in (("metrics", False), ("weighted_metrics", True)):
        identifiers = config.get(key) or []
        if isinstance(identifiers, dict):
            raise ValueError(f"train_multi_worker supports one output: {key} must be a list, got {identifiers!r}")
        for identifier in identifiers:
            if isinstance(identifier, str) and identifier.lower() in _AMBIGUOUS_METRICS:
                raise ValueError(f"compile(metrics=[{identifier!r}]) depends on the data's shapes; name the metric "
                                 "class instead, e.g. keras.metrics.BinaryAccuracy(name='accuracy')")
            metric = keras.metrics.get(identifier)  # a new object from a name or a serialized config
            if not isinstance(metric, keras.metrics.Metric):
                metric = keras.metrics.MeanMetricWrapper(metric, name=str(identifier))
            metrics.append((metric, weighted))
    names = [metric.name for metric, _ in metrics]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(f"the compiled metrics need distinct names other than 'loss', got {names}")
    return metrics


class _CompiledMetrics:
    """The model's compiled metrics under a strategy: updated per replica, read summed over all.

    Creates the metrics' variables, so every worker must build its phases in the same order.
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy):
        with strategy.scope():
            self._metrics = _compiled_metrics(model)
        self._read = tf.function(lambda: {metric.name: metric.result() for metric, _ in self._metrics})

    def reset(self) -> None:
        for metric, _ in self._metrics:
            metric.reset_state()

    def update(self, y, y_pred, sample_weight) -> None:
        """Call in replica context; as in ``Model.fit``, only ``weighted_metrics`` get the sample weights."""
        for metric, weighted in self._metrics:
            metric.update_state(y, y_pred, sample_weight=sample_weight if weighted else None)

    def results(self) -> dict:
        results = {}
        for name, value in self._read().items():  # sync-on-read: summed over every replica
            value = value.numpy()
            results[name] = float(value) if value.ndim == 0 else value.tolist()
        return results


class _TrainingSteps:
    """Training steps of a model under a strategy, with the loss and compiled metrics."""

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy, *, global_batch_size: Optional[int],
                 step: tf.Variable):
        self._model = model
        self._strategy = strategy
        self._global_batch_size = global_batch_size
        self._step = step
        self._loss_fn = _unreduced_loss(model)
        self._output_mask = _OutputMask()
        self._metrics = _CompiledMetrics(model, strategy)
        self._distributed_step = tf.function(self._distributed_step_fn)

    def _replica_step(self, batch) -> tf.Tensor:
        model = self._model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = _global_average_loss(self._loss_fn, model, y, y_pred, sample_weight, self._global_batch_size,
                                        self._output_mask(y_pred))
            scaled = model.optimizer.scale_loss(loss)  # the loss scale of mixed precision, if any
        gradients = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))  # all-reduces (SUM) first
        self._metrics.update(y, y_pred, sample_weight)
        return loss

    def _distributed_step_fn(self, iterator) -> tf.Tensor:
        losses = self._strategy.run(self._replica_step, args=(next(iterator),))
        self._step.assign_add(1)
        return self._strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def run(self, iterator, steps: int) -> dict:
        """Runs ``steps`` global steps; returns the mean loss and the metrics over all replicas."""
        self._metrics.reset()
        losses = [self._distributed_step(iterator) for _ in range(steps)]
        return {"loss": float(tf.reduce_mean(tf.stack(losses)).numpy()), **self._metrics.results()}


class _EvaluationPass:
    """The loss and compiled metrics of a model over ONE pass of a finite distributed dataset.

    Each global step sums, over the replicas, the batch's loss numerator and denominator
    (per-example losses and examples; with an output mask, the masked values and unmasked
    positions) and its examples; the pass sums ``loss x examples`` and ``examples``. No
    figure assumes full batches, so a partial last batch, a worker with fewer batches and
    the empty batches of a worker that ran out all count exactly what they hold.
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy):
        self._model = model
        self._strategy = strategy
        self._loss_fn = _unreduced_loss(model)
        self._output_mask = _OutputMask()
        self._metrics = _CompiledMetrics(model, strategy)
        # One trace for full, partial and empty batches (a plain dataset's batches have static shapes).
        self._distributed_step = tf.function(self._distributed_step_fn, reduce_retracing=True)

    def _replica_step(self, batch) -> tuple[tf.Tensor, ...]:
        model = self._model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        y_pred = model(x, training=False)
        values = tf.cast(self._loss_fn(y, y_pred, sample_weight=sample_weight), tf.float32)
        if values.shape.rank == 0:
            raise ValueError("the compiled loss returned a scalar with reduction=None; per-example values are needed")
        examples = tf.cast(tf.shape(values)[0], tf.float32)
        mask = self._output_mask(y_pred)
        if mask is None:  # "sum_over_batch_size": per example, the mean over its positions
            numerator = tf.reduce_sum(tf.reduce_mean(values, axis=list(range(1, values.shape.rank))))
            denominator = examples
        else:
            numerator, denominator = tf.reduce_sum(values), tf.reduce_sum(_broadcast_mask(mask, values))
        regularization = tf.add_n([tf.cast(l, tf.float32) for l in model.losses]) if model.losses else 0.0
        self._metrics.update(y, y_pred, sample_weight)
        return numerator, denominator, examples, regularization * examples

    def _distributed_step_fn(self, batch) -> tuple[tf.Tensor, tf.Tensor]:
        per_replica = self._strategy.run(self._replica_step, args=(batch,))
        numerator, denominator, examples, regularization = (
            self._strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in per_replica)
        # Model.evaluate weighs each batch's loss by its examples; regularization as in one batch of them.
        return tf.math.divide_no_nan(numerator, denominator) * examples + regularization, examples

    def run(self, distributed_dataset) -> dict:
        """One pass; every worker must call it (the steps are collective) and gets the same figures."""
        self._metrics.reset()
        weighted_loss, examples = 0.0, 0.0
        iterator = iter(distributed_dataset)
        while True:
            batch = iterator.get_next_as_optional()  # no value only once every worker has run out
            if not bool(batch.has_value()):
                break
            loss, count = self._distributed_step(batch.get_value())
            weighted_loss += float(loss)
            examples += float(count)
        if not examples:
            raise ValueError("the evaluation dataset is empty on every worker")
        return {"loss": weighted_loss / examples, **self._metrics.results()}


def _finite_dataset_fn(dataset_fn: DatasetFn, what: str) -> DatasetFn:
    """``dataset_fn`` that fails early, on every worker alike, when its dataset never ends."""

    def checked(context: tf.distribute.InputContext) -> tf.data.Dataset:
        dataset = dataset_fn(context)
        if not isinstance(dataset, tf.data.Dataset):
            raise TypeError(f"the {what} dataset_fn must return a tf.data.Dataset, got {type(dataset).__name__}")
        if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
            raise ValueError(f"the {what} dataset must be one finite pass (every example once): do not repeat() it")
        return dataset

    return checked


def _checked_dataset_fn(dataset_fn: DatasetFn, steps: int, what: str) -> DatasetFn:
    """``dataset_fn`` that fails early, on every worker alike, when its dataset is too short."""

    def checked(context: tf.distribute.InputContext) -> tf.data.Dataset:
        dataset = dataset_fn(context)
        if not isinstance(dataset, tf.data.Dataset):
            raise TypeError(f"the {what} dataset_fn must return a tf.data.Dataset, got {type(dataset).__name__}")
        batches = int(dataset.cardinality())
        local_replicas = context.num_replicas_in_sync // context.num_input_pipelines
        needed = steps * local_replicas
        if 0 <= batches < needed:
            # One worker running out while the others wait in a collective would hang the cluster.
            raise ValueError(f"the {what} dataset of input pipeline {context.input_pipeline_id} holds {batches} "
                             f"batches but {needed} are needed: repeat() it")
        return dataset

    return checked


class _EpochCheckpoints:
    """Saves and restores the training state; every worker saves, only the chief keeps it.

    Saving may run collective ops (variables synchronized on read), so every worker must
    call :meth:`save`; the others write to a private temporary folder that is deleted again.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, directory: str, *, chief: bool, max_to_keep: int):
        self._checkpoint = checkpoint
        self._directory = directory
        self._chief = chief
        self._manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep) if chief else None

    def restore(self) -> Optional[str]:
        """Restores the latest checkpoint of the (shared) directory; returns its path or None."""
        path = tf.train.latest_checkpoint(self._directory)
        if path:
            self._checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, number: int) -> Optional[str]:
        """Writes checkpoint ``number``; returns its path on the chief, None elsewhere."""
        if self._chief:
            return self._manager.save(checkpoint_number=number)
        scratch = tempfile.mkdtemp(prefix="seqbeam-worker-checkpoint-")
        try:
            tf.train.CheckpointManager(self._checkpoint, scratch, max_to_keep=1).save(checkpoint_number=number)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return None


def _check_same_everywhere(strategy: tf.distribute.Strategy, value: tf.Variable, what: str) -> None:
    """Raises on every worker alike unless ``value`` is the same on all of them."""
    if strategy.num_replicas_in_sync == 1:
        return

    @tf.function
    def gather():
        local = strategy.run(lambda: tf.reshape(tf.cast(value.read_value(), tf.float32), [1]))
        return strategy.gather(local, axis=0)

    everywhere = gather().numpy()
    if len(set(everywhere.tolist())) > 1:
        raise RuntimeError(f"the workers restored different {what} values {everywhere.tolist()}: checkpoint_dir must "
                           "be storage that every worker reads (e.g. gs://), the same path on all of them")


def train_multi_worker(
    model_fn: Callable[[], keras.Model],
    dataset_fn: DatasetFn,
    *,
    strategy: tf.distribute.Strategy,
    epochs: int,
    steps_per_epoch: int,
    checkpoint_dir: str,
    validation: Optional[DatasetFn] = None,
    global_batch_size: Optional[int] = None,
    max_to_keep: int = 2,
    log: Optional[logging.Logger] = None,
) -> dict:
    """Trains ``model_fn()`` data-parallel under ``strategy``; resumes from ``checkpoint_dir``.

    Args:
        model_fn: builds and compiles the model (one loss, one output); called inside
            ``strategy.scope()``. Its ``model.loss`` and ``model.optimizer`` are used.
        dataset_fn: ``InputContext -> tf.data.Dataset`` of one worker's ``(x, y)`` or
            ``(x, y, sample_weight)`` batches of ``context.get_per_replica_batch_size(global)``
            examples, sharded with ``context.num_input_pipelines`` /
            ``context.input_pipeline_id``, repeated (one iterator serves every epoch).
        strategy: usually ``tf.distribute.MultiWorkerMirroredStrategy()``; any strategy works.
        epochs, steps_per_epoch: the schedule; ``steps_per_epoch`` counts global steps.
        checkpoint_dir: where the chief keeps one checkpoint per finished epoch; every worker
            restores from it at start, so it must be storage all workers read.
        validation: ``dataset_fn`` of a FINITE dataset (not repeated), built like
            ``dataset_fn``: all of it is evaluated after each epoch (``val_loss``,
            ``val_<metric>``), every example once (see :class:`_EvaluationPass`).
        global_batch_size: divisor of the per-example losses; by default the per-replica
            batch times the replicas in sync (exact when every replica gets full batches).
            Unused for outputs with a Keras mask, whose divisor is the global unmasked count.
        max_to_keep: checkpoints the chief keeps.
        log: the logger of the per-epoch lines (this module's by default).

    Returns:
        ``{"history": {"loss": [...], "<metric>": [...], "val_loss": [...], ...}`` (the epochs
        run by this call only, as ``keras.callbacks.History.history``),
        ``"initial_epoch"``, ``"epochs_run"``, ``"steps"`` (global steps in total, resumed
        runs included), ``"num_replicas"``, ``"chief"``, ``"checkpoint"`` (latest path, on the
        chief), ``"seconds"``, ``"model"``}.
    """
    log = log or _LOG
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch), ("max_to_keep", max_to_keep)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if validation is not None and not callable(validation):
        raise ValueError(f"validation must be a dataset_fn (InputContext -> finite dataset), got {validation!r}")
    if not checkpoint_dir:
        raise ValueError("checkpoint_dir is required: it is how a restarted cluster resumes")
    chief = _strategy_is_chief(strategy)
    task_type, task_id = _task_of(strategy)
    who = f"{task_type} {task_id}" if task_type else "local"

    with strategy.scope():
        model = model_fn()
        if not isinstance(model, keras.Model) or model.optimizer is None:
            raise ValueError("model_fn must return a compiled keras.Model (call model.compile in it)")
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)  # slots exist before restore: nothing is deferred
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    train_phase = _TrainingSteps(model, strategy, global_batch_size=global_batch_size, step=step)
    valid_phase = _EvaluationPass(model, strategy) if validation else None
    checkpoints = _EpochCheckpoints(tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch, step=step),
                                    checkpoint_dir, chief=chief, max_to_keep=max_to_keep)
    restored = checkpoints.restore()
    _check_same_everywhere(strategy, epoch, "epoch")
    initial_epoch = int(epoch.numpy())
    log.info("%s: %s on %d replica(s) in sync, %s", who, type(strategy).__name__, strategy.num_replicas_in_sync,
             f"resumed from {restored} after epoch {initial_epoch}" if restored else "starting from scratch")

    remaining = max(0, epochs - initial_epoch)
    train_iterator = iter(strategy.distribute_datasets_from_function(
        _checked_dataset_fn(dataset_fn, remaining * steps_per_epoch, "training")))
    valid_batches = None
    if validation is not None:  # read from its start after each epoch: val_ figures of the same examples
        valid_batches = strategy.distribute_datasets_from_function(_finite_dataset_fn(validation, "validation"))

    history: dict[str, list] = {}
    latest = restored if chief else None
    started = time.monotonic()
    for current in range(initial_epoch, epochs):
        epoch_started = time.monotonic()
        results = train_phase.run(train_iterator, steps_per_epoch)
        if valid_phase is not None:
            valid_results = valid_phase.run(valid_batches)
            results.update({f"val_{name}": value for name, value in valid_results.items()})
        for name, value in results.items():
            history.setdefault(name, []).append(value)
        epoch.assign(current + 1)
        saved = checkpoints.save(current + 1)
        latest = saved or latest
        figures = ", ".join(f"{name} {value:.4f}" for name, value in results.items() if isinstance(value, float))
        log.info("%s: epoch %d/%d (%.1fs): %s", who, current + 1, epochs, time.monotonic() - epoch_started, figures)

    return {
        "history": history,
        "initial_epoch": initial_epoch,
        "epochs_run": remaining,
        "steps": int(step.numpy()),
        "num_replicas": strategy.num_replicas_in_sync,
        "chief": chief,
        "checkpoint": latest,
        "seconds": round(time.monotonic() - started, 1),
        "model": model,
    }


def evaluate_multi_worker(
    model: keras.Model,
    dataset_fn: DatasetFn,
    *,
    strategy: tf.distribute.Strategy,
) -> dict:
    """The loss and compiled metrics of ``model`` over one pass of a finite dataset.

    ``Model.evaluate`` fails under MultiWorkerMirroredStrategy like ``fit``; this is its
    replacement for a model trained by :func:`train_multi_worker` (every worker calls it and
    gets the same figures). ``dataset_fn`` gives per-replica batches of this worker's share
    (e.g. its own shard files), NOT repeated: every example is counted once, the workers may
    hold different amounts (see :class:`_EvaluationPass`).
    """
    phase = _EvaluationPass(model, strategy)
    return phase.run(strategy.distribute_datasets_from_function(_finite_dataset_fn(dataset_fn, "evaluation")))


def tf_config_from_environment() -> dict:
    """The parsed ``TF_CONFIG`` of this process ({} when unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    return json.loads(raw) if raw.strip() else {}
