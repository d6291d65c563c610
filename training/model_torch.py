"""The network in PyTorch. Its twin, layer for layer, is `model_keras.py`.

Input (N, 8, 8) float32 raw values 0..16; output (N, 10) probabilities. Normalization and the
channel axis are part of the network, so every exported artifact keeps the same contract.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from training.spec import INPUT_OFFSET, INPUT_SCALE, NUM_CLASSES, ModelConfig


class DigitsCNN(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        c1, c2, k = config.conv1_channels, config.conv2_channels, config.kernel_size
        self.conv1 = nn.Conv2d(1, c1, k, padding=k // 2)
        self.conv2 = nn.Conv2d(c1, c2, k, padding=k // 2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(c2 * config.pooled_size**2, config.hidden_units)
        self.dropout = nn.Dropout(config.dropout)  # active in training only
        self.fc2 = nn.Linear(config.hidden_units, NUM_CLASSES)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = (x * INPUT_SCALE + INPUT_OFFSET).unsqueeze(1)  # (N, 1, 8, 8), values 0..1
        x = F.relu(self.conv1(x))  # (N, c1, 8, 8)
        x = F.relu(self.conv2(x))  # (N, c2, 8, 8)
        x = self.pool(x)  # (N, c2, 4, 4)
        x = torch.flatten(x, 1)  # (N, c2*16), channel-major (C, H, W) order
        x = self.dropout(F.relu(self.fc1(x)))  # (N, hidden)
        return self.fc2(x)  # (N, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)  # (N, 10), rows sum to 1


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(model: DigitsCNN, spec: dict, path, extra: dict | None = None) -> None:
    """Weights plus the config they were trained with plus the spec: loading needs nothing else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": model.config.to_dict(), "spec": spec, **(extra or {})}, path)


def load_checkpoint(path) -> tuple[DigitsCNN, dict]:
    """The trained network in eval mode, and the spec it was trained with."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code is run
    model = DigitsCNN(ModelConfig.from_dict(checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint["spec"]
