"""Run an OpenVINO IR on OpenVINO's CPU plugin: the fp32 one in float32, the int8 one (NNCF's) in int8.

    .venv/bin/python -m edge.openvino.run --model artifacts/openvino/digits_fp32 digit.png
    .venv/bin/python -m edge.openvino.run --model artifacts/openvino/digits_int8 digit.png

`--model` is the IR folder the manifest records (model.xml and model.bin), verified first. The CPU plugin
may run a model in bf16 on processors that have it; `INFERENCE_PRECISION_HINT` f32 keeps every target's
answers within parity's 1e-4. It holds for what is not quantized: the int8 IR's FakeQuantize nodes still
make the plugin run its convolutions and fully connected layers in int8. The batch is dynamic.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import common
from edge.openvino.export import GRAPH


class OpenVinoPredictor:
    """A Predictor over a verified OpenVINO IR folder (fp32 or int8), compiled for the CPU; float32 where not int8."""

    framework = "torch"

    def __init__(self, model: Path, threads: int = 1, root: Path | None = None):
        import openvino as ov

        path, entry, self.spec = common.verified_entry(model, root)
        self.name = common.predictor_name(entry)
        self.framework = entry["framework"]
        self.precision = entry["precision"]
        core = ov.Core()
        compiled = core.compile_model(core.read_model(path / GRAPH), "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        self.request = compiled.create_infer_request()
        self._tensor = ov.Tensor

    def _answer(self, _raw=None) -> np.ndarray:
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)  # a copy: the request reuses it

    def predict(self, batch) -> np.ndarray:
        """(N, *item_shape) float32 raw values -> (N, K) float32 probabilities."""
        self.request.infer([common.check_runner_batch(batch, self.spec, self.name)])
        return self._answer()

    def prepare(self, batch) -> common.RuntimeCall:
        """`batch` checked and set as the request's input; `run` is `infer()` alone (see common.RuntimeCall)."""
        self.request.set_input_tensor(self._tensor(common.check_runner_batch(batch, self.spec, self.name)))
        return common.RuntimeCall(self.request.infer, self._answer)


def _arguments(parser) -> None:
    parser.add_argument("--threads", type=int, default=1, help="OpenVINO inference threads (default: 1)")


def main(argv=None) -> np.ndarray:
    return common.main(__doc__, lambda args: OpenVinoPredictor(args.model, args.threads), _arguments, argv)


if __name__ == "__main__":
    main()
