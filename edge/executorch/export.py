"""Export the trained PyTorch model to ExecuTorch programs: XNNPACK-delegated and portable.

    python -m edge.executorch.export                 # both, into artifacts/executorch/
    python -m edge.executorch.export --max-batch 64  # a smaller upper bound on the batch

torch.export with a dynamic batch dimension (example batch of 2: an example batch of 1 would
specialize the batch to 1) -> `to_edge_transform_and_lower`, with the XNNPACK partitioner or
without any (the portable kernels) -> `.to_executorch()`. Writes:

  executorch/<model>_xnnpack_fp32.pte    manifest id `executorch_xnnpack_fp32` (with `delegation`)
  executorch/<model>_portable_fp32.pte   manifest id `executorch_portable_fp32`

Every operator of the network must run on XNNPACK: if any falls back to the portable kernels (a
layer XNNPACK does not lower), the XNNPACK export stops with the operators that fell back, and the
build reports the target "not supported by this network" while every other target goes on.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core import manifest, paths
from core import spec as specs
from core.manifest import save_artifact
from core.support import NotSupported
from training import data

DEFAULT_MAX_BATCH = 1024  # the largest batch the programs accept; the runner splits larger ones
VARIANTS = ("xnnpack", "portable")
# Nodes that stay outside the delegate by design: reading the delegate's outputs and the batch size.
BOOKKEEPING_OPS = {"getitem", "sym_size_int"}


class DelegationError(NotSupported):
    """An operator of the network falls back to the portable kernels: XNNPACK does not run this network."""


def pte_path(variant: str, root: Path | None = None, precision: str = "fp32") -> Path:
    root = root or paths.artifacts_dir()
    return root / "executorch" / f"{specs.load(root).model_name}_{variant}_{precision}.pte"


def load_source(root: Path):
    """The verified PyTorch model and its own example inputs: two real train images (a batch of 1
    would fix the exported batch to 1)."""
    import torch

    from training.model_torch import load_checkpoint

    model, _ = load_checkpoint(manifest.verify("torch_checkpoint", root))
    return model, torch.tensor(data.load_split(paths.split_path(root))["train"].x[:2])


def delegation_report(lowered) -> dict:
    """Operators delegated to XNNPACK vs left to the portable kernels, in total and per operator."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(lowered.exported_program().graph_module)
    by_op = {op: {"delegated": b.delegated, "not_delegated": b.non_delegated}
             for op, b in sorted(info.delegation_by_operator.items())}
    fallback = {op: n["not_delegated"] for op, n in by_op.items() if n["not_delegated"] and op not in BOOKKEEPING_OPS}
    delegated = sum(n["delegated"] for n in by_op.values())
    counted = delegated + sum(fallback.values())
    return {
        "delegated_ops": delegated,
        "not_delegated_ops": counted - delegated,
        "counted_ops": counted,
        "share": delegated / counted if counted else 0.0,
        "fallback": fallback,
        "subgraphs": info.num_delegated_subgraphs,
        "by_operator": by_op,
    }


def require_full_delegation(report: dict) -> dict:
    """The report, if every operator runs on XNNPACK; otherwise stop, naming those that do not."""
    if report["fallback"]:
        raise DelegationError(f"your network's operators {report['fallback']} are not delegated "
                              f"({report['delegated_ops']}/{report['counted_ops']} delegated)", "ExecuTorch XNNPACK",
                              "executorch-portable-fp32 or onnx-fp32 (or a layer XNNPACK lowers)")
    return report


def export_program(model, example, max_batch: int):
    """torch.export with the batch dimension dynamic from 1 to `max_batch`."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=max_batch)
    return infer_batch_in_reshapes(torch.export.export(model, (example,), dynamic_shapes=({0: batch},)))


def infer_batch_in_reshapes(exported):
    """Rewrite the network's reshapes (unsqueeze, flatten) as views with the batch written as -1.

    XNNPACK lowers a reshape only when its target shape is static but for one inferred (-1)
    dimension, and an unsqueeze only on the last axis. The exported graph holds the batch as a
    symbol (`[s0, 256]`), so without this both reshapes fall back to the portable kernels. The
    function is unchanged: a view to the same shape, with the batch inferred instead of named.
    """
    import torch

    graph = exported.graph_module.graph
    reshapes = (torch.ops.aten.unsqueeze.default, torch.ops.aten.flatten.using_ints)
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in reshapes:
            continue
        shape = node.meta["val"].shape
        symbolic = [i for i, size in enumerate(shape) if not isinstance(size, int)]
        if len(symbolic) != 1:
            continue  # leave it as it is; the delegation check reports it if it falls back
        with graph.inserting_before(node):
            view = graph.call_function(torch.ops.aten.view.default,
                                       (node.args[0],
                                        [-1 if i in symbolic else int(size) for i, size in enumerate(shape)]))
        view.meta = dict(node.meta)
        node.replace_all_uses_with(view)
        graph.erase_node(node)
    exported.graph_module.recompile()
    return exported


def lower(exported, variant: str, max_batch: int):
    """The edge program, delegated to XNNPACK or left to the portable kernels."""
    from executorch.exir import to_edge_transform_and_lower

    if variant == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        lowered = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    else:
        lowered = to_edge_transform_and_lower(exported)
    return restore_batch_range(lowered, max_batch)


def restore_batch_range(lowered, max_batch: int):
    """Give the batch symbol back its exported range 1..max_batch before memory planning.

    While XNNPACK lowers the convolutions it re-traces them with fake tensors, and PyTorch's fake
    convolution asks whether the batch is >= 16 to pick a memory format (the oneDNN heuristic).
    Answered with the example batch of 2, that adds the guard `batch < 16`, and memory planning
    would then size every buffer for 15 images: batch 16 and up would be refused at run time. The
    guard says nothing about the network (the parity tests run batches of 1..360 through it).
    """
    from torch.utils._sympy.value_ranges import ValueRanges

    graph = lowered.exported_program().graph_module.graph
    image = [node for node in graph.nodes if node.op == "placeholder"][-1]  # parameters come first
    batch = image.meta["val"].shape[0]
    if isinstance(batch, int):  # exported with a fixed batch: nothing to restore
        return lowered
    batch.node.shape_env.var_to_range[batch.node.expr] = ValueRanges(1, max_batch)
    return lowered


def export_xnnpack(root: Path) -> dict[str, dict]:
    """The build graph's export-executorch-xnnpack step (core/registry.py)."""
    return export(root, variants=("xnnpack",))


def export_portable(root: Path) -> dict[str, dict]:
    """The build graph's export-executorch-portable step (core/registry.py)."""
    return export(root, variants=("portable",))


def export(root: Path | None = None, max_batch: int = DEFAULT_MAX_BATCH, variants=VARIANTS) -> dict[str, dict]:
    """Write the .pte files of `variants` under `root` and record them; returns the manifest entries."""
    root = (root or paths.artifacts_dir()).resolve()
    model, example = load_source(root)
    entries = {}
    for variant in variants:
        print(f"executorch: {variant}: torch.export (batch 1..{max_batch}), lowering")
        # One export per variant: lowering changes the exported program's shape environment.
        lowered = lower(export_program(model, example, max_batch), variant, max_batch)
        extra = {"source": "torch_checkpoint", "variant": variant, "max_batch": max_batch}
        if variant == "xnnpack":
            report = delegation_report(lowered)
            print(f"executorch: {report['delegated_ops']}/{report['counted_ops']} operators delegated to XNNPACK "
                  f"({report['share']:.0%}) in {report['subgraphs']} subgraph(s)")
            extra["delegation"] = require_full_delegation(report)
        artifact_id = f"executorch_{variant}_fp32"
        entries[artifact_id] = save_artifact(artifact_id, pte_path(variant, root), lowered.to_executorch().buffer,
                                             framework="torch", precision="fp32", root=root, **extra)
    return entries


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help=f"largest batch the programs accept, images (default: {DEFAULT_MAX_BATCH})")
    args = parser.parse_args(argv)
    if args.max_batch < 2:
        parser.error("--max-batch must be at least 2")
    export(max_batch=args.max_batch)


if __name__ == "__main__":
    main()
