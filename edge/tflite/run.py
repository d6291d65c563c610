"""Run a .tflite model on the standalone runtime, the way a device runs it: no TensorFlow.

    .venv-edge/bin/python -m edge.tflite.run --model artifacts/tflite/digits_int8.tflite digit.png
    .venv-edge/bin/python -m edge.tflite.run --model artifacts/tflite/digits_fp32.tflite images.npz
    .venv-tflite/bin/python -m edge.tflite.run --model ... digit.png       # tflite-runtime: the one installed

The interpreter comes from ai-edge-litert, or the legacy tflite-runtime 2.14 (its own environment,
.venv-tflite, set up with the TFLite targets): by default whichever is installed, ai-edge-litert
first. The model is verified against its manifest first. Both
files take and give float32, the spec's contract: float32 (N, *item_shape) raw values in, float32
(N, K) probabilities out. The int8 model quantizes its input and dequantizes its output itself
(QUANTIZE / DEQUANTIZE ops inside the file, run by the interpreter), so the runner does no
arithmetic of its own: check, copy in, invoke, copy out.

A file with a static batch dimension (the PyTorch model converted by litert-torch,
`tflite_torch_fp32`: batch 1, which XNNPACK refuses to resize) runs a batch of N one row per
`invoke()`: each image is copied in, invoked and its answer copied out, in order; `prepare(batch)`
then times those N invokes with their copies (the runtime's own call for such a file).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import common

RUNTIMES = ("litert", "tflite-runtime")


def installed_runtime() -> str:
    """The standalone runtime this environment has: ai-edge-litert, else tflite-runtime (else "litert", whose
    import then fails naming it)."""
    from importlib.util import find_spec

    return "tflite-runtime" if find_spec("ai_edge_litert") is None and find_spec("tflite_runtime") else "litert"


def load_interpreter_class(runtime: str):
    """The Interpreter class of the chosen standalone runtime (both have the same API)."""
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter
    elif runtime == "tflite-runtime":
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as error:
            raise RuntimeError("tflite-runtime is not installed here: run `make setup` and use "
                               ".venv-tflite/bin/python") from error
    else:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
    return Interpreter


class TFLitePredictor:
    """A Predictor over a verified .tflite file (fp32, or int8 that quantizes its float32 input itself)."""

    framework = "tensorflow"

    def __init__(self, model: Path, runtime: str = "litert", threads: int = 1, root: Path | None = None):
        path, entry, self.spec = common.verified_entry(model, root)
        self.name = common.predictor_name(entry) + ("" if runtime == "litert" else f"-{runtime}")
        self.framework = entry["framework"]  # the weights' source: tensorflow, or torch (litert-torch)
        self.precision = entry["precision"]
        self.interpreter = load_interpreter_class(runtime)(model_path=str(path), num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.quantization = entry.get("quantization")
        self._check_io()
        self.input_index, self.output_index = self.input["index"], self.output["index"]
        self.item_shape = [int(d) for d in self.input["shape"][1:]]
        self.batch = None  # the batch size the tensors are allocated for
        # A static batch dimension (-1 in the signature when dynamic): run batches of that size.
        fixed = int(self.input.get("shape_signature", [-1])[0])
        self.fixed_batch = fixed if fixed > 0 else None
        if self.fixed_batch not in (None, 1):
            raise ValueError(f"{self.name}: a static batch of {fixed} is not supported: "
                             "export batch 1 or a dynamic batch")
        if self.fixed_batch:
            self.interpreter.allocate_tensors()
            self.batch = 1

    def _check_io(self) -> None:
        """float32 in and out, as the spec's contract: an int8 model quantizes and dequantizes inside."""
        for side, detail in (("input", self.input), ("output", self.output)):
            if np.dtype(detail["dtype"]) != np.float32:
                raise ValueError(f"{self.name}: the model's {side} is {np.dtype(detail['dtype']).name}, not float32: "
                                 "it was exported before the int8 model quantized its own input and output; "
                                 "rebuild it (`make export-edge`)")
        if self.precision == "int8" and not self.quantization:
            raise ValueError(f"{self.name}: the manifest entry records no quantization parameters: rebuild it")

    def _allocate(self, batch: int) -> None:
        # The interpreter allocates batch 1 at first: resize only when the batch size changes.
        if self.batch != batch:
            self.interpreter.resize_tensor_input(self.input_index, [batch, *self.item_shape])
            self.interpreter.allocate_tensors()
            self.batch = batch

    def _feed(self, batch) -> None:
        """Check the batch and copy it into the input tensor (float32 for both precisions)."""
        batch = common.check_runner_batch(batch, self.spec, self.name)
        self._allocate(len(batch))
        self.interpreter.set_tensor(self.input_index, batch)

    def _answer(self, _raw=None) -> np.ndarray:
        return self.interpreter.get_tensor(self.output_index)  # a copy, float32: the interpreter reuses its buffer

    def _rows(self, batch: np.ndarray) -> np.ndarray:
        """A static batch-1 file: each image in, invoke, its answer out, in order -> (N, K)."""
        answers = []
        for row in batch:
            self.interpreter.set_tensor(self.input_index, row[None])
            self.interpreter.invoke()
            answers.append(self._answer()[0])
        return np.stack(answers).astype(np.float32, copy=False)

    def predict(self, batch) -> np.ndarray:
        """(N, *item_shape) float32 raw values -> (N, K) float32 probabilities."""
        if self.fixed_batch:
            return self._rows(common.check_runner_batch(batch, self.spec, self.name))
        self._feed(batch)
        self.interpreter.invoke()
        return self._answer()

    def prepare(self, batch) -> common.RuntimeCall:
        """`batch` checked and set in the interpreter; `run` is `invoke()` alone (see common.RuntimeCall).
        A static batch-1 file: `run` is the N invokes, each with its row's copy in and out."""
        if self.fixed_batch:
            checked = common.check_runner_batch(batch, self.spec, self.name)
            return common.RuntimeCall(lambda: self._rows(checked), lambda answers: answers)
        self._feed(batch)
        return common.RuntimeCall(self.interpreter.invoke, self._answer)


def _arguments(parser) -> None:
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="the standalone interpreter: ai-edge-litert or tflite-runtime 2.14 (default: the one "
                        "installed, litert first)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default: 1)")


def main(argv=None) -> np.ndarray:
    return common.main(__doc__, lambda args: TFLitePredictor(args.model, args.runtime or installed_runtime(),
                                                             args.threads), _arguments, argv)


if __name__ == "__main__":
    main()
