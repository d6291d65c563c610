"""Train the PyTorch network on the saved split (called by `training.train`)."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from training.data import Split, augment_with_shifts
from training.model_torch import Network, build_network, count_params
from core.spec import Spec
from training.spec import ModelConfig


def accuracy(model: Network, split: Split) -> float:
    with torch.no_grad():
        predicted = model.eval()(torch.from_numpy(split.x)).argmax(dim=1).numpy()
    return float(np.mean(predicted == split.y))


def train(splits: dict[str, Split], config: ModelConfig, spec: Spec, *, epochs: int, seed: int, batch_size: int,
          learning_rate: float, log_dir: Path) -> tuple[Network, dict]:
    """Seeded Adam training; returns the model and its metrics entry."""
    torch.manual_seed(seed)
    train_split = augment_with_shifts(splits["train"])
    generator = torch.Generator().manual_seed(seed)
    model = build_network(config, spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    steps = epochs * math.ceil(len(train_split) / batch_size)
    # Cosine decay to zero over the run, per step, the same schedule as the Keras loop.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    x_train, y_train = torch.from_numpy(train_split.x), torch.from_numpy(train_split.y)

    start = time.perf_counter()
    with SummaryWriter(str(log_dir)) as writer:
        bar = tqdm(range(1, epochs + 1), desc="torch     ", unit="epoch")
        for epoch in bar:
            model.train()
            order = torch.randperm(len(x_train), generator=generator)
            total = 0.0
            for first in range(0, len(order), batch_size):
                batch = order[first : first + batch_size]
                loss = F.cross_entropy(model.logits(x_train[batch]), y_train[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
            train_loss, val_accuracy = total / len(order), accuracy(model, splits["val"])
            writer.add_scalar("loss/train", train_loss, epoch)
            writer.add_scalar("accuracy/val", val_accuracy, epoch)
            bar.set_postfix(loss=f"{train_loss:.4f}", val_acc=f"{val_accuracy:.4f}")
    seconds = time.perf_counter() - start

    metrics = {
        "test_accuracy": accuracy(model, splits["test"]),
        "params": count_params(model),
        "train_seconds": round(seconds, 2),
        "epochs": epochs,
    }
    return model.eval(), metrics
