"""Run a .tflite model on the standalone runtime, the way a device runs it: no TensorFlow.

    .venv-edge/bin/python -m edge.tflite.run --model artifacts/tflite/digits_int8.tflite digit.png
    .venv-edge/bin/python -m edge.tflite.run --model artifacts/tflite/digits_fp32.tflite images.npz
    .venv-tflite/bin/python -m edge.tflite.run --runtime tflite-runtime --model ... digit.png

The interpreter comes from ai-edge-litert (default) or the legacy tflite-runtime 2.14 (its own
environment, `make setup-tflite-runtime`). The model is verified against its manifest first. The
int8 model takes int8 input: the raw values (0..16 for the digits) are quantized here with the
scale and zero point recorded in the manifest, and the int8 output is turned back into
probabilities, so the caller always sees the spec's contract: float32 (N, *item_shape) in,
float32 (N, K) out.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import common

RUNTIMES = ("litert", "tflite-runtime")


def load_interpreter_class(runtime: str):
    """The Interpreter class of the chosen standalone runtime (both have the same API)."""
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter
    elif runtime == "tflite-runtime":
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as error:
            raise RuntimeError("tflite-runtime is not installed here: run `make setup-tflite-runtime` and use "
                               ".venv-tflite/bin/python") from error
    else:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
    return Interpreter


class TFLitePredictor:
    """A Predictor over a verified .tflite file (fp32 or full-integer int8)."""

    framework = "tensorflow"

    def __init__(self, model: Path, runtime: str = "litert", threads: int = 1, root: Path | None = None):
        path, entry, self.spec = common.verified_entry(model, root)
        self.name = common.predictor_name(entry) + ("" if runtime == "litert" else f"-{runtime}")
        self.precision = entry["precision"]
        self.interpreter = load_interpreter_class(runtime)(model_path=str(path), num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.quantization = entry.get("quantization")
        if self.precision == "int8":
            self._check_quantization()
        self.batch = None  # the batch size the tensors are allocated for

    def _check_quantization(self) -> None:
        """The model's own input/output parameters must be the ones the manifest recorded."""
        if not self.quantization:
            raise ValueError(f"{self.name}: the manifest entry records no quantization parameters: rebuild it")
        for side, detail in (("input", self.input), ("output", self.output)):
            recorded = self.quantization[side]
            scale, zero_point = detail["quantization"]
            if not (np.isclose(scale, recorded["scale"], rtol=1e-6) and zero_point == recorded["zero_point"]):
                raise ValueError(f"{self.name}: the model's {side} quantization ({scale}, {zero_point}) differs from "
                                 f"the manifest's ({recorded['scale']}, {recorded['zero_point']}): rebuild it")

    def _allocate(self, batch: int) -> None:
        # The interpreter allocates batch 1 at first: resize for the batch at hand.
        if self.batch != batch:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.batch = batch

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        if self.precision != "int8":
            return batch
        q = self.quantization["input"]
        info = np.iinfo(np.int8)
        return np.clip(np.round(batch / q["scale"]) + q["zero_point"], info.min, info.max).astype(np.int8)

    def _decode(self, raw: np.ndarray) -> np.ndarray:
        if self.precision != "int8":
            return raw.astype(np.float32)
        q = self.quantization["output"]
        return ((raw.astype(np.float32) - q["zero_point"]) * q["scale"]).astype(np.float32)

    def predict(self, batch) -> np.ndarray:
        """(N, *item_shape) float32 raw values -> (N, K) float32 probabilities."""
        batch = common.check_runner_batch(batch, self.spec, self.name)
        self._allocate(len(batch))
        self.interpreter.set_tensor(self.input["index"], self._encode(batch))
        self.interpreter.invoke()
        return self._decode(self.interpreter.get_tensor(self.output["index"]))


def _arguments(parser) -> None:
    parser.add_argument("--runtime", choices=RUNTIMES, default="litert",
                        help="the standalone interpreter: ai-edge-litert or tflite-runtime 2.14 (default: litert)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default: 1)")


def main(argv=None) -> np.ndarray:
    return common.main(__doc__, lambda args: TFLitePredictor(args.model, args.runtime, args.threads), _arguments, argv)


if __name__ == "__main__":
    main()
