"""The networks in Keras (TensorFlow). Their twins, layer for layer, are in `model_torch.py`.

Input (N, H, W) or (N, H, W, C) float32 raw values in the spec's range, named by the spec;
output (N, K) probabilities named by the spec. Channels-last (N, H, W, C), as Keras prefers.

A new network is a function here and a class in `model_torch.py`, both named in `NETWORKS`.
`twin.py` pairs the layers that carry weights (Conv2D, DepthwiseConv2D, Dense,
BatchNormalization) with PyTorch's by their order, so call them in the order PyTorch defines its
modules. Only built-in layers: every converter (TFLite, TF.js, SavedModel) knows them.
"""
from __future__ import annotations

import math

import keras
from keras import layers

from core.spec import Spec
from training.downsampling import pooled_sizes
from training.spec import ModelConfig

# PyTorch's BatchNorm defaults (model_torch.BN_EPSILON, BN_MOMENTUM), not Keras' own
# (epsilon 1e-3, momentum 0.99): the twin check refuses any difference.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # Keras keeps this much of the old statistics: 1 - PyTorch's momentum (0.1)


def cnn(x, config: ModelConfig, spec: Spec):
    """arch "cnn": two convs, pooling, a hidden dense layer with dropout (the digits: 9,802 parameters).

    Inputs larger than 16x16 get extra conv + pooling stages, as `model_torch.CNN` does.
    """
    c1, c2, k = config.conv1_channels, config.conv2_channels, config.kernel_size
    x = layers.Conv2D(c1, k, padding="same", activation="relu", name="conv1")(x)  # (N, H, W, c1)
    x = layers.Conv2D(c2, k, padding="same", activation="relu", name="conv2")(x)  # (N, H, W, c2)
    x = layers.MaxPooling2D(2, name="pool")(x)  # (N, H/2, W/2, c2)
    for stage in range(1, len(pooled_sizes(spec.height, spec.width))):
        x = layers.Conv2D(c2, k, padding="same", activation="relu", name=f"stage{stage}_conv")(x)
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.Flatten(name="flatten")(x)  # channel-last (H, W, C) order
    x = layers.Dense(config.hidden_units, activation="relu", name="fc1")(x)  # (N, hidden)
    return layers.Dropout(config.dropout, name="dropout")(x)  # active in training only


def batch_norm(name: str):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def residual_block(x, channels: int, kernel_size: int, name: str):
    """Two convs with BatchNorm, added to the input (through a 1x1 conv + BatchNorm when the channels change)."""
    y = layers.Conv2D(channels, kernel_size, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.ReLU(name=f"{name}_relu1")(batch_norm(f"{name}_bn1")(y))
    y = layers.Conv2D(channels, kernel_size, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = batch_norm(f"{name}_bn2")(y)
    shortcut = x
    if x.shape[-1] != channels:
        shortcut = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_shortcut_conv")(x)
        shortcut = batch_norm(f"{name}_shortcut_bn")(shortcut)
    return layers.ReLU(name=f"{name}_relu2")(layers.Add(name=f"{name}_add")([y, shortcut]))


def resnet(x, config: ModelConfig, spec: Spec):
    """arch "resnet": conv + BatchNorm stem, one residual block, pooling, a hidden dense layer with dropout."""
    c1, c2, k = config.conv1_channels, config.conv2_channels, config.kernel_size
    x = layers.Conv2D(c1, k, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.ReLU(name="stem_relu")(batch_norm("stem_bn")(x))  # (N, H, W, c1)
    x = residual_block(x, c2, k, "block")  # (N, H, W, c2)
    for stage in range(len(pooled_sizes(spec.height, spec.width))):
        x = layers.MaxPooling2D(2, name="pool" if stage == 0 else f"pool{stage + 1}")(x)
    x = layers.Flatten(name="flatten")(x)  # channel-last (H, W, C) order
    x = layers.Dense(config.hidden_units, activation="relu", name="fc1")(x)  # (N, hidden)
    return layers.Dropout(config.dropout, name="dropout")(x)  # active in training only


NETWORKS = {"cnn": cnn, "resnet": resnet}  # arch -> function; model_torch.NETWORKS has the same keys


def build_model(config: ModelConfig, spec: Spec) -> keras.Model:
    """The network `config.arch` names: raw input named by the spec in, probabilities named by the spec out."""
    if config.arch not in NETWORKS:
        raise ValueError(f"no Keras network {config.arch!r} in training/model_keras.py (have {sorted(NETWORKS)})")
    inputs = keras.Input(shape=spec.item_shape, dtype="float32", name=spec.input_name)  # (N, H, W[, C])
    x = layers.Rescaling(spec.scale, offset=spec.offset, name="normalize")(inputs)  # values 0..1
    x = layers.Reshape((spec.height, spec.width, spec.channels), name="add_channel")(x)  # (N, H, W, C)
    x = NETWORKS[config.arch](x, config, spec)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name=spec.output_name)(x)  # (N, K)
    return keras.Model(inputs, outputs, name=f"{spec.model_name}_{config.arch}")


def count_params(model: keras.Model) -> int:
    """Trainable parameters, as PyTorch counts them (BatchNorm's moving statistics are non-trainable here)."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))
