"""The network in PyTorch. Its twin, layer for layer, is `model_keras.py`.

Input (N, H, W) or (N, H, W, C) float32 raw values in the spec's range (the digits: (N, 8, 8),
0..16); output (N, K) probabilities. Normalization and the channel axis are part of the network,
so every exported artifact keeps the same contract.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from core.spec import Spec, from_dict
from training.spec import ModelConfig


class DigitsCNN(nn.Module):
    def __init__(self, config: ModelConfig, spec: Spec):
        super().__init__()
        self.config, self.spec = config, spec
        c1, c2, k = config.conv1_channels, config.conv2_channels, config.kernel_size
        self.conv1 = nn.Conv2d(spec.channels, c1, k, padding=k // 2)
        self.conv2 = nn.Conv2d(c1, c2, k, padding=k // 2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(c2 * (spec.height // 2) * (spec.width // 2), config.hidden_units)
        self.dropout = nn.Dropout(config.dropout)  # active in training only
        self.fc2 = nn.Linear(config.hidden_units, spec.num_classes)

    def to_channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, W) or (N, H, W, C) -> (N, C, H, W), normalized to 0..1."""
        x = x * self.spec.scale + self.spec.offset
        if x.dim() == 3:
            return x.unsqueeze(1)  # (N, 1, H, W)
        return x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W); contiguous so flatten exports everywhere

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.to_channels_first(x)  # (N, C, H, W), values 0..1
        x = F.relu(self.conv1(x))  # (N, c1, H, W)
        x = F.relu(self.conv2(x))  # (N, c2, H, W)
        x = self.pool(x)  # (N, c2, H/2, W/2)
        x = torch.flatten(x, 1)  # channel-major (C, H, W) order
        x = self.dropout(F.relu(self.fc1(x)))  # (N, hidden)
        return self.fc2(x)  # (N, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)  # (N, K), rows sum to 1


def count_params(model: nn.Module) -> int:
    """Trainable parameters (what Keras calls trainable weights; running statistics are buffers here)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_checkpoint(model: DigitsCNN, spec: Spec, path, extra: dict | None = None) -> None:
    """Weights plus the config they were trained with plus the spec: loading needs nothing else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": model.config.to_dict(), "spec": spec.data, **(extra or {})}, path)


def load_checkpoint(path) -> tuple[DigitsCNN, dict]:
    """The trained network in eval mode, and the spec it was trained with."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code is run
    spec = from_dict(checkpoint["spec"], str(path))
    model = DigitsCNN(ModelConfig.from_dict(checkpoint["config"]), spec)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), spec
