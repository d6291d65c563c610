"""Run the ONNX model on onnxruntime (CPU).

    .venv/bin/python -m edge.onnx.run --model artifacts/onnx/digits_fp32.onnx digit.png

The model is verified against its manifest first; the batch is dynamic.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import common


class OnnxPredictor:
    """A Predictor over a verified .onnx file, on onnxruntime's CPU provider."""

    framework = "torch"

    def __init__(self, model: Path, threads: int = 1, root: Path | None = None):
        import onnxruntime as ort

        path, entry, self.spec = common.verified_entry(model, root)
        self.name = common.predictor_name(entry)
        self.precision = entry["precision"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def _feed(self, batch) -> dict:
        return {self.input_name: common.check_runner_batch(batch, self.spec, self.name)}

    @staticmethod
    def _answer(outputs) -> np.ndarray:
        return np.asarray(outputs[0], dtype=np.float32)  # float32 already: no copy

    def predict(self, batch) -> np.ndarray:
        """(N, *item_shape) float32 raw values -> (N, K) float32 probabilities."""
        return self._answer(self.session.run(None, self._feed(batch)))

    def prepare(self, batch) -> common.RuntimeCall:
        """`batch` checked into a feed; `run` is `session.run` on it alone (see common.RuntimeCall)."""
        feed = self._feed(batch)
        return common.RuntimeCall(lambda: self.session.run(None, feed), self._answer)


def _arguments(parser) -> None:
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default: 1)")


def main(argv=None) -> np.ndarray:
    return common.main(__doc__, lambda args: OnnxPredictor(args.model, args.threads), _arguments, argv)


if __name__ == "__main__":
    main()
