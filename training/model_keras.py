"""The network in Keras (TensorFlow). Its twin, layer for layer, is `model_torch.py`.

Input (N, H, W) or (N, H, W, C) float32 raw values in the spec's range, named by the spec;
output (N, K) probabilities.
Channels-last (N, H, W, C), as Keras prefers; `twin.py` maps the PyTorch weights onto this.
"""
from __future__ import annotations

import keras
from keras import layers

from core.spec import Spec
from training.spec import ModelConfig


def build_model(config: ModelConfig, spec: Spec) -> keras.Model:
    c1, c2, k = config.conv1_channels, config.conv2_channels, config.kernel_size
    inputs = keras.Input(shape=spec.item_shape, dtype="float32", name=spec.input_name)  # (N, H, W[, C])
    x = layers.Rescaling(spec.scale, offset=spec.offset, name="normalize")(inputs)  # values 0..1
    x = layers.Reshape((spec.height, spec.width, spec.channels), name="add_channel")(x)  # (N, H, W, C)
    x = layers.Conv2D(c1, k, padding="same", activation="relu", name="conv1")(x)  # (N, H, W, c1)
    x = layers.Conv2D(c2, k, padding="same", activation="relu", name="conv2")(x)  # (N, H, W, c2)
    x = layers.MaxPooling2D(2, name="pool")(x)  # (N, H/2, W/2, c2)
    x = layers.Flatten(name="flatten")(x)  # channel-last (H, W, C) order
    x = layers.Dense(config.hidden_units, activation="relu", name="fc1")(x)  # (N, hidden)
    x = layers.Dropout(config.dropout, name="dropout")(x)  # active in training only
    outputs = layers.Dense(spec.num_classes, activation="softmax", name=spec.output_name)(x)  # (N, K)
    return keras.Model(inputs, outputs, name=f"{spec.model_name}_{config.arch}")
