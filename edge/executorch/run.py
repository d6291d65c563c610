"""Run an ExecuTorch program (.pte) through `executorch.runtime`.

    .venv/bin/python -m edge.executorch.run --model artifacts/executorch/digits_xnnpack_fp32.pte digit.png
    .venv/bin/python -m edge.executorch.run --model artifacts/executorch/digits_portable_fp32.pte images.npz

The program is verified against its manifest first. It accepts batches of 1 up to the
`max_batch` it was exported with (recorded in the manifest); larger batches are run in chunks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import common


class ExecuTorchPredictor:
    """A Predictor over a verified .pte file (XNNPACK-delegated or portable)."""

    framework = "torch"

    def __init__(self, model: Path, root: Path | None = None):
        from executorch.runtime import Runtime

        path, entry, self.spec = common.verified_entry(model, root)
        self.name = common.predictor_name(entry)
        self.precision = entry["precision"]
        self.max_batch = int(entry["max_batch"])
        self.method = Runtime.get().load_program(path).load_method("forward")

    @staticmethod
    def _answer(outputs) -> np.ndarray:
        return np.asarray(outputs[0].numpy(), dtype=np.float32)  # a fresh float32 tensor per call: no copy

    def predict(self, batch) -> np.ndarray:
        """(N, *item_shape) float32 raw values -> (N, K) float32 probabilities."""
        import torch

        batch = common.check_runner_batch(batch, self.spec, self.name)
        if len(batch) <= self.max_batch:  # one call, no concatenation
            return self._answer(self.method.execute([torch.from_numpy(batch)]))
        chunks = [self._answer(self.method.execute([torch.from_numpy(batch[first : first + self.max_batch])]))
                  for first in range(0, len(batch), self.max_batch)]
        return np.concatenate(chunks)

    def prepare(self, batch) -> common.RuntimeCall:
        """`batch` checked and wrapped as the method's input; `run` is `execute` alone (see common.RuntimeCall).

        One call of the program: at most `max_batch` images (predict chunks larger batches)."""
        import torch

        batch = common.check_runner_batch(batch, self.spec, self.name)
        if len(batch) > self.max_batch:
            raise ValueError(f"{self.name}: prepare takes at most {self.max_batch} images (one call of the program)")
        inputs = [torch.from_numpy(batch)]
        return common.RuntimeCall(lambda: self.method.execute(inputs), self._answer)


def main(argv=None) -> np.ndarray:
    return common.main(__doc__, lambda args: ExecuTorchPredictor(args.model), argv=argv)


if __name__ == "__main__":
    main()
