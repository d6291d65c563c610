"""Train the PyTorch network on the saved split (called by `training.train` and `training.ddp_torch`).

The same loop runs alone or as one rank of a DistributedDataParallel group (`torch.distributed`
initialized by `training.ddp_torch` under torchrun): each rank then trains on its own shard of
every epoch's shuffled order, the global batch is `batch_size` x ranks and the learning rate
scales with it. `compile=True` trains through `torch.compile` (inductor) instead of eagerly.
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from core.spec import Spec
from training import augment as augmentation
from training.data import Split
from training.model_torch import Network, build_network, count_params
from training.spec import ModelConfig


class Logits(nn.Module):
    """The network's logits as a forward(): what DDP and torch.compile wrap (the loss takes logits,
    and DDP synchronizes gradients only for what runs through forward)."""

    def __init__(self, model: Network):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.logits(x)


def accuracy(model: Network, split: Split) -> float:
    with torch.no_grad():
        predicted = model.eval()(torch.from_numpy(split.x)).argmax(dim=1).numpy()
    return float(np.mean(predicted == split.y))


def group() -> tuple[int, int]:
    """(rank, world size) of the process group this process belongs to; (0, 1) alone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(splits: dict[str, Split], config: ModelConfig, spec: Spec, *, epochs: int, seed: int, batch_size: int,
          learning_rate: float, log_dir: Path | None, augment: bool = False,
          compile: bool = False) -> tuple[Network, dict]:
    """Seeded Adam training; returns the model and its metrics entry (rank 0's, in a group).

    `augment`: train on warped copies and synthetic digits too (training/augment.py).

    `log_dir` None: no TensorBoard logs (whose writer imports TensorFlow into this process)."""
    rank, world = group()
    torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    train_split = augmentation.training_examples(splits["train"], spec, augment=augment, seed=seed)
    generator = torch.Generator().manual_seed(seed)  # the same permutation on every rank
    model = build_network(config, spec)
    step_model: nn.Module = Logits(model)
    if world > 1:
        step_model = nn.parallel.DistributedDataParallel(step_model)
    if compile:
        step_model = torch.compile(step_model)
    # Linear scaling: the global batch is batch_size x world, so the learning rate grows with it.
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate * world)
    shard = len(train_split) // world  # every rank gets as many examples, so all take the same steps
    steps = epochs * math.ceil(shard / batch_size)
    # Cosine decay to zero over the run, per step, the same schedule as the Keras loop.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                 lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    x_train, y_train = torch.from_numpy(train_split.x), torch.from_numpy(train_split.y)

    epoch_seconds = []
    logging = rank == 0 and log_dir is not None  # one rank writes the logs
    writer = _writer(log_dir) if logging else contextlib.nullcontext()
    start = time.perf_counter()
    with writer:
        bar = tqdm(range(1, epochs + 1), desc="torch     ", unit="epoch", disable=rank != 0)
        for epoch in bar:
            began = time.perf_counter()
            step_model.train()
            order = torch.randperm(len(x_train), generator=generator)[rank : shard * world : world]  # this rank's shard
            total = 0.0
            for first in range(0, len(order), batch_size):
                batch = order[first : first + batch_size]
                loss = F.cross_entropy(step_model(x_train[batch]), y_train[batch])
                optimizer.zero_grad()
                loss.backward()  # under DDP: gradients averaged over the ranks here
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
            train_loss, val_accuracy = total / len(order), accuracy(model, splits["val"])
            epoch_seconds.append(round(time.perf_counter() - began, 3))
            if logging:
                writer.add_scalar("loss/train", train_loss, epoch)
                writer.add_scalar("accuracy/val", val_accuracy, epoch)
            bar.set_postfix(loss=f"{train_loss:.4f}", val_acc=f"{val_accuracy:.4f}")
    seconds = time.perf_counter() - start

    metrics = {
        "test_accuracy": accuracy(model, splits["test"]),
        "params": count_params(model),
        "train_seconds": round(seconds, 2),
        "epochs": epochs,
        "epoch_seconds": epoch_seconds,  # each epoch's wall time: training steps plus the validation pass
    }
    return model.eval(), metrics


def _writer(log_dir: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(log_dir))
