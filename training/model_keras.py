"""The network in Keras (TensorFlow). Its twin, layer for layer, is `model_torch.py`.

Input (N, 8, 8) float32 raw values 0..16, named by the spec; output (N, 10) probabilities.
Channels-last (N, H, W, C), as Keras prefers; `twin.py` maps the PyTorch weights onto this.
"""
from __future__ import annotations

import keras
from keras import layers

from training.spec import IMAGE_SIZE, INPUT_NAME, INPUT_OFFSET, INPUT_SCALE, NUM_CLASSES, OUTPUT_NAME, ModelConfig


def build_model(config: ModelConfig = ModelConfig()) -> keras.Model:
    c1, c2, k = config.conv1_channels, config.conv2_channels, config.kernel_size
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="float32", name=INPUT_NAME)  # (N, 8, 8)
    x = layers.Rescaling(INPUT_SCALE, offset=INPUT_OFFSET, name="normalize")(inputs)  # values 0..1
    x = layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="add_channel")(x)  # (N, 8, 8, 1)
    x = layers.Conv2D(c1, k, padding="same", activation="relu", name="conv1")(x)  # (N, 8, 8, c1)
    x = layers.Conv2D(c2, k, padding="same", activation="relu", name="conv2")(x)  # (N, 8, 8, c2)
    x = layers.MaxPooling2D(2, name="pool")(x)  # (N, 4, 4, c2)
    x = layers.Flatten(name="flatten")(x)  # (N, 16*c2), channel-last (H, W, C) order
    x = layers.Dense(config.hidden_units, activation="relu", name="fc1")(x)  # (N, hidden)
    x = layers.Dropout(config.dropout, name="dropout")(x)  # active in training only
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=OUTPUT_NAME)(x)  # (N, 10)
    return keras.Model(inputs, outputs, name="digits_cnn")
