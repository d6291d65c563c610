"""Train the Keras network on the saved split (called by `training.train` and `training.mwms_keras`).

By default `fit` runs the training step as a tf.function graph (Keras' own default on a CPU);
`jit_compile=True` compiles that step with XLA, `run_eagerly=True` runs it op by op. Given a
`tf.distribute` strategy (MultiWorkerMirroredStrategy in `training.mwms_keras`), every worker
trains on its own slice of each global batch (tf.data shards the input by DATA), the global batch
is `batch_size` x replicas and the learning rate scales with it.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from core.spec import Spec
from training import augment as augmentation
from training.data import Split
from training.model_keras import build_model, count_params
from training.spec import ModelConfig


class EpochProgress(keras.callbacks.Callback):
    """One tqdm bar over epochs, like the PyTorch loop's (Keras' own bar is per batch); times each epoch."""

    def __init__(self, epochs: int, show: bool = True):
        super().__init__()
        self.bar = tqdm(total=epochs, desc="tensorflow", unit="epoch", disable=not show)
        self.seconds, self.began = [], 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.seconds.append(round(time.perf_counter() - self.began, 3))
        self.bar.update(1)
        shown = {"loss": logs.get("loss"), "val_acc": logs.get("val_accuracy")}  # no validation when distributed
        self.bar.set_postfix({key: f"{value:.4f}" for key, value in shown.items() if value is not None})

    def on_train_end(self, logs=None):
        self.bar.close()


def accuracy(model: keras.Model, split: Split) -> float:
    predicted = model.predict(split.x, verbose=0, batch_size=256).argmax(axis=1)
    return float(np.mean(predicted == split.y))


def train(splits: dict[str, Split], config: ModelConfig, spec: Spec, *, epochs: int, seed: int, batch_size: int,
          learning_rate: float, log_dir: Path | None, augment: bool = False, jit_compile: bool = False,
          run_eagerly: bool = False, strategy: tf.distribute.Strategy | None = None) -> tuple[keras.Model, dict]:
    """Seeded Adam training; returns the model (a plain one, outside any strategy) and its metrics entry.

    `augment`: train on warped copies and synthetic digits too (training/augment.py). `log_dir` None:
    no TensorBoard logs."""
    keras.utils.set_random_seed(seed)
    if strategy is None:
        tf.config.experimental.enable_op_determinism()
    world = strategy.num_replicas_in_sync if strategy else 1
    chief = strategy is None or strategy.cluster_resolver.task_id == 0
    train_split = augmentation.training_examples(splits["train"], spec, augment=augment, seed=seed)
    steps_per_epoch = math.ceil(len(train_split) / (batch_size * world))  # one pass over the split per epoch
    # Cosine decay to zero over the run, per step, the same schedule as the PyTorch loop; linear
    # scaling: the global batch is batch_size x world, so the learning rate grows with it.
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate * world, decay_steps=epochs * steps_per_epoch)
    progress = EpochProgress(epochs, show=chief)
    if strategy is None:
        model = build_model(config, spec)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=jit_compile, run_eagerly=run_eagerly)
    start = time.perf_counter()
    if strategy is None:
        model.fit(train_split.x, train_split.y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
                  validation_data=(splits["val"].x, splits["val"].y),
                  callbacks=[progress] + ([keras.callbacks.TensorBoard(log_dir=str(log_dir))] if log_dir else []))
    else:
        model = _fit_distributed(strategy, config, spec, train_split, schedule, progress, epochs=epochs,
                                 steps_per_epoch=steps_per_epoch, global_batch=batch_size * world, seed=seed)
    seconds = time.perf_counter() - start
    metrics = {
        "test_accuracy": accuracy(model, splits["test"]),
        "params": count_params(model),  # trainable, as PyTorch counts
        "train_seconds": round(seconds, 2),
        "epochs": epochs,
        # each epoch's wall time: training steps plus validation (none when distributed)
        "epoch_seconds": progress.seconds,
    }
    return model, metrics


def _sharded(train_split: Split, global_batch: int, seed: int) -> tf.data.Dataset:
    """The global batches, the same on every worker (same seed); under the strategy each worker's
    pipeline keeps only its own replica's slice of each one (tf.data auto-sharding by DATA)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (tf.data.Dataset.from_tensor_slices((train_split.x, train_split.y))
            .shuffle(len(train_split), seed=seed, reshuffle_each_iteration=True)
            .repeat().batch(global_batch, drop_remainder=True).with_options(options))


def _fit_distributed(strategy, config: ModelConfig, spec: Spec, train_split: Split, schedule,
                     progress: EpochProgress, *, epochs: int, steps_per_epoch: int, global_batch: int,
                     seed: int) -> keras.Model:
    """The training step run on every replica through `strategy.run`, gradients summed across workers.

    Not `model.fit`: Keras 3's fit does not run under MultiWorkerMirroredStrategy (it reduces a
    distributed batch and scalar logs in ways that strategy rejects: keras-team/keras#20585, open),
    so this is TensorFlow's own custom-loop form: the same network, loss, optimizer and schedule.
    """
    with strategy.scope():
        model = build_model(config, spec)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(model.trainable_variables)
    batches = iter(strategy.experimental_distribute_dataset(_sharded(train_split, global_batch, seed)))

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            per_example = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
            # Divided by the global batch: the optimizer sums the replicas' gradients into the mean.
            loss = tf.reduce_sum(per_example) / global_batch
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=False))
        return loss

    @tf.function
    def step():
        return strategy.reduce("SUM", strategy.run(replica_step, args=next(batches)), axis=None)

    for epoch in range(epochs):
        progress.on_epoch_begin(epoch)
        total = sum(float(step()) for _ in range(steps_per_epoch))
        progress.on_epoch_end(epoch, {"loss": total / steps_per_epoch})
    progress.on_train_end()
    return _plain_copy(model, config, spec)  # evaluated and saved outside the strategy, like a local model


def _plain_copy(model: keras.Model, config: ModelConfig, spec: Spec) -> keras.Model:
    """The trained weights in a model built outside the strategy (its variables are mirrored ones)."""
    plain = build_model(config, spec)
    plain.set_weights(model.get_weights())
    return plain
