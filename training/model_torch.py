"""The networks in PyTorch. Their twins, layer for layer, are in `model_keras.py`.

Input (N, H, W) or (N, H, W, C) float32 raw values in the spec's range (the digits: (N, 8, 8),
0..16); output (N, K) probabilities. Normalization and the channel axis are part of the network,
so every exported artifact keeps the same contract.

A new network is a class here and a function in `model_keras.py`, both named in `NETWORKS`
(train it with `--arch <name>`). The twin check (`twin.py`) pairs the layers that carry weights
(Conv2d, depthwise/grouped too, Linear, BatchNorm) by their order, so define them here in the
order the Keras function calls its layers. Pooling, dropout, activations, flatten and residual
adds carry no weights and need no mapping; keep them the same in both files.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from core.spec import Spec, from_dict
from training.downsampling import pooled_sizes
from training.spec import ModelConfig

# BatchNorm as PyTorch defaults it; model_keras.py sets the same (Keras' own defaults differ:
# epsilon 1e-3, momentum 0.99 = 1 - 0.01), and the twin check refuses any difference.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.1  # PyTorch's weight of the new batch; Keras' momentum is 1 - this


class Network(nn.Module):
    """What every network shares: the spec's normalization and channel axis in, probabilities out."""

    def __init__(self, config: ModelConfig, spec: Spec):
        super().__init__()
        self.config, self.spec = config, spec

    def to_channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, W) or (N, H, W, C) -> (N, C, H, W), normalized to 0..1."""
        x = x * self.spec.scale + self.spec.offset
        if x.dim() == 3:
            return x.unsqueeze(1)  # (N, 1, H, W)
        return x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W); contiguous so flatten exports everywhere

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)  # (N, K), rows sum to 1


class CNN(Network):
    """arch "cnn": two convs, pooling, a hidden dense layer with dropout (the digits: 9,802 parameters).

    Inputs larger than 16x16 get extra conv + pooling stages (`downsampling.pooled_sizes`), so
    the flattened features stay small; inputs up to 16x16 (the digits) have none.
    """

    def __init__(self, config: ModelConfig, spec: Spec):
        super().__init__(config, spec)
        c1, c2, k = config.conv1_channels, config.conv2_channels, config.kernel_size
        sizes = pooled_sizes(spec.height, spec.width)
        self.conv1 = nn.Conv2d(spec.channels, c1, k, padding=k // 2)
        self.conv2 = nn.Conv2d(c1, c2, k, padding=k // 2)
        self.pool = nn.MaxPool2d(2)
        # One stage per further pooling: conv, relu, pool (empty for the digits: no layer, no parameter).
        self.stages = nn.Sequential(*(nn.Sequential(nn.Conv2d(c2, c2, k, padding=k // 2), nn.ReLU(), nn.MaxPool2d(2))
                                      for _ in sizes[1:]))
        height, width = sizes[-1]
        self.fc1 = nn.Linear(c2 * height * width, config.hidden_units)
        self.dropout = nn.Dropout(config.dropout)  # active in training only
        self.fc2 = nn.Linear(config.hidden_units, spec.num_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.to_channels_first(x)  # (N, C, H, W), values 0..1
        x = F.relu(self.conv1(x))  # (N, c1, H, W)
        x = F.relu(self.conv2(x))  # (N, c2, H, W)
        x = self.stages(self.pool(x))  # (N, c2, H', W')
        x = torch.flatten(x, 1)  # channel-major (C, H, W) order
        x = self.dropout(F.relu(self.fc1(x)))  # (N, hidden)
        return self.fc2(x)  # (N, K)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with BatchNorm, added to the input (through a 1x1 conv + BatchNorm when the channels change)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        k = kernel_size
        self.conv1 = nn.Conv2d(in_channels, out_channels, k, padding=k // 2, bias=False)  # BatchNorm has the bias
        self.bn1 = batch_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, k, padding=k // 2, bias=False)
        self.bn2 = batch_norm(out_channels)
        self.project = in_channels != out_channels
        if self.project:
            self.shortcut_conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.shortcut_bn = batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = self.shortcut_bn(self.shortcut_conv(x)) if self.project else x
        return F.relu(y + shortcut)


class ResNet(Network):
    """arch "resnet": conv + BatchNorm stem, one residual block, pooling, a hidden dense layer with dropout."""

    def __init__(self, config: ModelConfig, spec: Spec):
        super().__init__(config, spec)
        c1, c2, k = config.conv1_channels, config.conv2_channels, config.kernel_size
        sizes = pooled_sizes(spec.height, spec.width)
        self.stem_conv = nn.Conv2d(spec.channels, c1, k, padding=k // 2, bias=False)
        self.stem_bn = batch_norm(c1)
        self.block = ResidualBlock(c1, c2, k)
        self.pool = nn.Sequential(*(nn.MaxPool2d(2) for _ in sizes))  # (N, c2, H', W'); one for the digits
        height, width = sizes[-1]
        self.fc1 = nn.Linear(c2 * height * width, config.hidden_units)
        self.dropout = nn.Dropout(config.dropout)  # active in training only
        self.fc2 = nn.Linear(config.hidden_units, spec.num_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.to_channels_first(x)  # (N, C, H, W), values 0..1
        x = F.relu(self.stem_bn(self.stem_conv(x)))  # (N, c1, H, W)
        x = self.pool(self.block(x))  # (N, c2, H', W')
        x = torch.flatten(x, 1)  # channel-major (C, H, W) order
        x = self.dropout(F.relu(self.fc1(x)))  # (N, hidden)
        return self.fc2(x)  # (N, K)


NETWORKS = {"cnn": CNN, "resnet": ResNet}  # arch -> class; model_keras.NETWORKS has the same keys


def build_network(config: ModelConfig, spec: Spec) -> Network:
    """The network `config.arch` names, for the spec's input shape and classes."""
    if config.arch not in NETWORKS:
        raise ValueError(f"no PyTorch network {config.arch!r} in training/model_torch.py (have {sorted(NETWORKS)})")
    return NETWORKS[config.arch](config, spec)


DigitsCNN = build_network  # the name callers use: DigitsCNN(config, spec) builds the network config.arch names


def count_params(model: nn.Module) -> int:
    """Trainable parameters (what Keras calls trainable weights; running statistics are buffers here)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_checkpoint(model: Network, spec: Spec, path, extra: dict | None = None) -> None:
    """Weights plus the config they were trained with plus the spec: loading needs nothing else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": model.config.to_dict(), "spec": spec.data, **(extra or {})}, path)


def load_checkpoint(path) -> tuple[Network, Spec]:
    """The trained network in eval mode, and the spec it was trained with."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code is run
    spec = from_dict(checkpoint["spec"], str(path))
    model = build_network(ModelConfig.from_dict(checkpoint["config"]), spec)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), spec
