"""The twin check: PyTorch-trained weights loaded into the Keras network give the same function.

Layouts differ only in memory order, so the mapping is a handful of transposes:
  conv kernels  PyTorch (out, in, kh, kw)  ->  Keras (kh, kw, in, out)
  fc1 kernel    PyTorch (hidden, C*H*W)    ->  Keras (H*W*C, hidden)   (flatten order differs)
  fc2 kernel    PyTorch (10, hidden)       ->  Keras (hidden, 10)
"""
from __future__ import annotations

import numpy as np

from training.spec import ModelConfig


def torch_to_keras_weights(state_dict: dict, config: ModelConfig, spec) -> dict[str, list[np.ndarray]]:
    """Map a PyTorch `DigitsCNN` state dict onto Keras layer names -> [kernel, bias]."""
    w = {name: tensor.detach().cpu().numpy() for name, tensor in state_dict.items()}
    height, width, c2 = spec.height // 2, spec.width // 2, config.conv2_channels
    fc1 = w["fc1.weight"].reshape(-1, c2, height, width)  # (hidden, C, H, W)
    fc1 = fc1.transpose(2, 3, 1, 0).reshape(height * width * c2, -1)  # (H*W*C, hidden)
    return {
        "conv1": [w["conv1.weight"].transpose(2, 3, 1, 0), w["conv1.bias"]],
        "conv2": [w["conv2.weight"].transpose(2, 3, 1, 0), w["conv2.bias"]],
        "fc1": [fc1, w["fc1.bias"]],
        spec.output_name: [w["fc2.weight"].T, w["fc2.bias"]],
    }


def keras_twin(torch_model):
    """A Keras network carrying the PyTorch model's weights."""
    from training.model_keras import build_model

    keras_model = build_model(torch_model.config, torch_model.spec)
    for layer_name, weights in torch_to_keras_weights(torch_model.state_dict(), torch_model.config,
                                                      torch_model.spec).items():
        keras_model.get_layer(layer_name).set_weights(weights)
    return keras_model


def twin_max_abs_diff(torch_model, x: np.ndarray) -> float:
    """Largest absolute difference between the two frameworks' probabilities on x (N, 8, 8)."""
    import torch

    with torch.no_grad():
        expected = torch_model.eval()(torch.from_numpy(x)).numpy()
    actual = keras_twin(torch_model).predict(x, verbose=0, batch_size=256)
    return float(np.max(np.abs(expected - actual)))
