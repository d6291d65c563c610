"""Train the Keras network on the saved split (called by `training.train`)."""
from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from training.data import Split, augment_with_shifts
from training.model_keras import build_model, count_params
from core.spec import Spec
from training.spec import ModelConfig


class EpochProgress(keras.callbacks.Callback):
    """One tqdm bar over epochs, like the PyTorch loop's (Keras' own bar is per batch)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.bar = tqdm(total=epochs, desc="tensorflow", unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.4f}", val_acc=f"{logs.get('val_accuracy', float('nan')):.4f}")

    def on_train_end(self, logs=None):
        self.bar.close()


def accuracy(model: keras.Model, split: Split) -> float:
    predicted = model.predict(split.x, verbose=0, batch_size=256).argmax(axis=1)
    return float(np.mean(predicted == split.y))


def train(splits: dict[str, Split], config: ModelConfig, spec: Spec, *, epochs: int, seed: int, batch_size: int,
          learning_rate: float, log_dir: Path) -> tuple[keras.Model, dict]:
    """Seeded Adam training; returns the model and its metrics entry."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(config, spec)
    train_split = augment_with_shifts(splits["train"])
    steps = epochs * math.ceil(len(train_split) / batch_size)
    # Cosine decay to zero over the run, per step, the same schedule as the PyTorch loop.
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(
        train_split.x, train_split.y,
        batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
        validation_data=(splits["val"].x, splits["val"].y),
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(log_dir)), EpochProgress(epochs)],
    )
    seconds = time.perf_counter() - start
    metrics = {
        "test_accuracy": accuracy(model, splits["test"]),
        "params": count_params(model),  # trainable, as PyTorch counts
        "train_seconds": round(seconds, 2),
        "epochs": epochs,
    }
    return model, metrics
