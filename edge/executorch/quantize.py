"""Quantize the trained PyTorch model to an int8 ExecuTorch program on XNNPACK (PT2E static quantization).

    python -m edge.executorch.quantize                    # into artifacts/executorch/<model>_xnnpack_int8.pte
    python -m edge.executorch.quantize --calibration 200  # fewer calibration images (faster)

torch.export (dynamic batch) -> `prepare_pt2e` with ExecuTorch's `XNNPACKQuantizer` (int8 weights,
symmetric per output channel; int8 activations per tensor, histogram-calibrated) -> calibration on
a fixed sample of the train split (edge.common.calibration_images, the same images TFLite's int8
file is calibrated on) -> `convert_pt2e` -> the fp32 export's own steps (edge/executorch/export.py:
torch.export with the batch 1..max_batch, lowering with the XNNPACK partitioner, the delegation
check). Writes:

  executorch/<model>_xnnpack_int8.pte   manifest id `executorch_xnnpack_int8` (with `delegation`,
                                        `quantization`, `int8_layers`, `calibration_images`)

The program takes and gives float32 like the fp32 one (raw values in the spec's range in,
probabilities out): it quantizes its own input, and the softmax runs in float32 on XNNPACK after
the last int8 layer's output is dequantized. The export stops if any operator falls back to the
portable kernels (DelegationError), or if a layer with weights (conv, linear) stayed float32.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core import paths
from core.manifest import save_artifact
from edge.common import DEFAULT_CALIBRATION, calibration_images
from edge.executorch.export import (
    DEFAULT_MAX_BATCH,
    delegation_report,
    export_program,
    load_source,
    lower,
    pte_path,
    require_full_delegation,
)

ARTIFACT = "executorch_xnnpack_int8"
CALIBRATION_CHUNK = 100  # images per calibration call (the prepared graph has a dynamic batch)
SCHEME = ("XNNPACKQuantizer, static: int8 weights symmetric per output channel, int8 activations per tensor "
          "(HistogramObserver); softmax float32")


class QuantizationError(RuntimeError):
    """A layer with weights was left float32 by the quantizer."""


def quantize(model, example, calibration, max_batch: int):
    """The model with int8 observers calibrated on `calibration` (N, *item_shape), converted to
    quantize/dequantize ops around int8 weights (a torch.fx GraphModule, float32 in and out)."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    batch = torch.export.Dim("batch", min=1, max=max_batch)
    captured = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},)).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(captured, quantizer)
    images = torch.from_numpy(calibration)
    with torch.no_grad():
        for first in range(0, len(images), CALIBRATION_CHUNK):
            prepared(images[first : first + CALIBRATION_CHUNK])
    return convert_pt2e(prepared)


def int8_layers(converted) -> dict:
    """The layers with weights (conv, linear) by whether their input and weight are int8 (dequantized
    in the graph: XNNPACK then runs the int8 kernel) or float32; {"int8": {op: n}, "float32": {op: n}}."""
    import torch

    dequantize = {torch.ops.quantized_decomposed.dequantize_per_tensor.default,
                  torch.ops.quantized_decomposed.dequantize_per_channel.default}
    weighted = {torch.ops.aten.conv2d.default: "conv2d", torch.ops.aten.linear.default: "linear"}
    found = {"int8": {}, "float32": {}}
    for node in converted.graph.nodes:
        if node.op == "call_function" and node.target in weighted:
            int8 = all(getattr(arg, "target", None) in dequantize for arg in node.args[:2])
            kind = found["int8" if int8 else "float32"]
            kind[weighted[node.target]] = kind.get(weighted[node.target], 0) + 1
    return found


def require_int8_layers(layers: dict) -> dict:
    """The int8 layer counts, if every layer with weights is int8; otherwise stop, naming those that are not."""
    if layers["float32"] or not layers["int8"]:
        raise QuantizationError(f"layers with weights left float32 by the quantizer: {layers['float32']} "
                                f"(int8: {layers['int8']})")
    return layers["int8"]


def input_quantization(converted) -> dict:
    """Scale and zero point of the int8 tensor the program quantizes its float32 input to."""
    import torch

    image = [node for node in converted.graph.nodes if node.op == "placeholder"][-1]
    for node in image.users:
        if node.target == torch.ops.quantized_decomposed.quantize_per_tensor.default:
            _, scale, zero_point, _, _, dtype = node.args
            return {"dtype": str(dtype).removeprefix("torch."), "scale": float(scale), "zero_point": int(zero_point)}
    raise QuantizationError("the program does not quantize its input itself")


def io_dtype(lowered) -> str:
    """The dtype the lowered program takes and gives (ValueError unless input and output agree)."""
    graph = lowered.exported_program().graph_module.graph
    image = [node for node in graph.nodes if node.op == "placeholder"][-1]
    (answer,) = next(node for node in graph.nodes if node.op == "output").args[0]
    found = {str(image.meta["val"].dtype), str(answer.meta["val"].dtype)}
    if len(found) != 1:
        raise ValueError(f"the program's input and output dtypes differ: {sorted(found)}")
    return found.pop().removeprefix("torch.")


def export(root: Path | None = None, max_batch: int = DEFAULT_MAX_BATCH,
           calibration_size: int = DEFAULT_CALIBRATION) -> dict[str, dict]:
    """Write the int8 .pte under `root` and record it; returns the manifest entry by id."""
    root = (root or paths.artifacts_dir()).resolve()
    model, example = load_source(root)
    calibration = calibration_images(root, calibration_size)
    print(f"executorch: int8: PT2E quantization, {len(calibration)} calibration images")
    converted = quantize(model, example, calibration, max_batch)
    layers = require_int8_layers(int8_layers(converted))
    print(f"executorch: int8: torch.export (batch 1..{max_batch}), lowering to XNNPACK")
    lowered = lower(export_program(converted, example, max_batch), "xnnpack", max_batch)
    report = delegation_report(lowered)
    print(f"executorch: int8: {report['delegated_ops']}/{report['counted_ops']} operators delegated to XNNPACK "
          f"({report['share']:.0%}) in {report['subgraphs']} subgraph(s)")
    extra = {"source": "torch_checkpoint", "variant": "xnnpack", "max_batch": max_batch,
             "delegation": require_full_delegation(report), "int8_layers": layers,
             "quantization": {"input": input_quantization(converted), "scheme": SCHEME},
             "calibration_images": len(calibration), "io_dtype": io_dtype(lowered)}
    entry = save_artifact(ARTIFACT, pte_path("xnnpack", root, "int8"), lowered.to_executorch().buffer,
                          framework="torch", precision="int8", root=root, **extra)
    return {ARTIFACT: entry}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help=f"largest batch the program accepts, images (default: {DEFAULT_MAX_BATCH})")
    parser.add_argument("--calibration", type=int, default=DEFAULT_CALIBRATION,
                        help=f"train images used to calibrate int8 (default: {DEFAULT_CALIBRATION})")
    args = parser.parse_args(argv)
    if args.max_batch < 2 or args.calibration < 1:
        parser.error("--max-batch must be at least 2 and --calibration at least 1")
    export(max_batch=args.max_batch, calibration_size=args.calibration)


if __name__ == "__main__":
    main()
