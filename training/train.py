"""Train the reference model in PyTorch and in TensorFlow, check they are twins, write metrics.

    python -m training.train                    # both frameworks, the cnn network, width 1, 25 epochs
    python -m training.train --epochs 1         # the fast path tests use
    python -m training.train --data mine.npz    # your own x (N, H, W[, C]), y (N,), labels, name
    python -m training.train --arch resnet      # the second reference network
    python -m training.train --no-augment       # the digits without warped copies and synthetic digits

Writes under the artifacts folder (`artifacts/` or $DIGITS_ARTIFACTS):
  spec.json                      the one source of truth every later stage reads, derived from the data
  data/split.npz                 the stratified train/val/test split (indices and arrays)
  torch/model.pt                 PyTorch weights + the config they were trained with + the spec
  tensorflow/model.keras         the Keras model
  tensorboard/{torch,tensorflow} TensorBoard logs (`tensorboard --logdir artifacts/tensorboard`)
  metrics.json                   accuracy, parameters, time and epochs per framework, twin diff
  manifest.json                  every built artifact with its sha256 (see core/manifest.py)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from core import paths
from core.spec import Spec, from_dict
from training import data
from training.spec import ARCHS, DIGITS_REDUCTION, RESIZE_REDUCTION, WIDTHS, ModelConfig, derive_spec, write_spec

TWIN_TOLERANCE = 1e-5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, shared by `training.train`, `training.distributed` and its workers."""
    parser.add_argument("--epochs", type=int, default=25, help="passes over the training examples (default: 25)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="train on slanted, stretched, thicker and thinner copies and on synthetic drawn and "
                        "printed digits too (training/augment.py); default: on for the digits, off for --data")
    parser.add_argument("--width", type=int, default=1, choices=WIDTHS, help="channel multiplier (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split and both trainings (default: 0)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="examples per step (per worker when distributed; default: 32)")
    parser.add_argument("--lr", type=float, default=3e-3,
                        help="Adam learning rate (x workers when distributed; default: 3e-3)")
    parser.add_argument("--arch", default="cnn", help=f"the network: {' or '.join(ARCHS)}, or one you add to "
                        "training/model_torch.py and model_keras.py (default: cnn)")
    parser.add_argument("--data", type=Path, help="your own .npz instead of scikit-learn's digits: x (N, H, W) or "
                        "(N, H, W, C) with C 1 or 3, y (N,) class ids, optional labels (K,) and name")
    parser.add_argument("--value-min", type=float, help="smallest raw input value (default: from the data)")
    parser.add_argument("--value-max", type=float, help="largest raw input value (default: from the data)")
    parser.add_argument("--artifacts", type=Path, help="output folder (default: $DIGITS_ARTIFACTS or ./artifacts)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Refuse flags that do not go together (parser.error names them)."""
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if (args.value_min is None) != (args.value_max is None):
        parser.error("--value-min and --value-max go together")
    if args.value_min is not None and not args.data:
        parser.error("--value-min/--value-max apply to your own --data")
    if args.augment is None:  # the digits are augmented unless asked not to; your own data only when asked
        args.augment = not args.data
    return args


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return check_arguments(parser, parser.parse_args(argv))


def hyperparameters(args: argparse.Namespace) -> dict:
    return dict(epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, learning_rate=args.lr,
                augment=(not args.data) if args.augment is None else bool(args.augment))


def config_of(args: argparse.Namespace) -> ModelConfig:
    return ModelConfig(width=args.width, arch=args.arch)


def prepare(args: argparse.Namespace) -> tuple[Path, ModelConfig, dict, Spec]:
    """The artifacts folder, the network's config, the split (made and saved) and the spec derived
    from the data (written to spec.json)."""
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    config = config_of(args)
    value_range = (args.value_min, args.value_max) if args.value_min is not None else None
    try:
        dataset, splits = data.prepare(args.seed, args.data, paths.split_path(root), value_range)
    except data.DataError as error:
        raise SystemExit(f"error: {error}") from None
    spec_dict = derive_spec(config, item_shape=dataset.item_shape, labels=dataset.labels,
                            value_range=dataset.value_range, model_name=dataset.name,
                            reduction=RESIZE_REDUCTION if args.data else DIGITS_REDUCTION, seed=args.seed,
                            data_source=str(args.data or "sklearn.load_digits"))
    write_spec(spec_dict, paths.spec_path(root))
    spec = from_dict(spec_dict)
    print(f"data: {', '.join(f'{name} {len(part)}' for name, part in splits.items())} "
          f"({args.data or 'scikit-learn digits'}): {dataset.name!r}, images {spec.describe_item()} in "
          f"{spec.value_range()}, {spec.num_classes} classes; seed {args.seed}, {args.arch} width {args.width}")
    return root, config, splits, spec


def require_network(arch: str) -> None:
    """Stop before training when either network file lacks `arch` (SystemExit naming the file)."""
    from training import model_keras, model_torch

    missing = [file for file, networks in (("model_torch.py", model_torch.NETWORKS),
                                           ("model_keras.py", model_keras.NETWORKS))
               if arch not in networks]
    if missing:
        raise SystemExit(f"error: no network {arch!r} in training/{' and training/'.join(missing)} "
                         f"(have {', '.join(sorted(model_torch.NETWORKS))}): define it in both files")


def finish(root: Path, spec: Spec, splits: dict, trained: dict, config: ModelConfig, **extra) -> dict:
    """Save both trained models where every export looks, record them, run the twin check, write metrics.json.

    `trained` maps "torch" and "tensorflow" to (model, metrics entry); `extra` goes into metrics.json.
    """
    from core import manifest
    from training import twin
    from training.model_torch import save_checkpoint

    (torch_model, torch_metrics), (keras_model, keras_metrics) = trained["torch"], trained["tensorflow"]
    save_checkpoint(torch_model, spec, paths.torch_checkpoint_path(root), extra={"metrics": torch_metrics})
    paths.keras_model_path(root).parent.mkdir(parents=True, exist_ok=True)
    keras_model.save(paths.keras_model_path(root))
    manifest.record("torch_checkpoint", paths.torch_checkpoint_path(root), framework="torch", precision="fp32",
                    root=root, metrics=torch_metrics)
    manifest.record("keras_model", paths.keras_model_path(root), framework="tensorflow", precision="fp32",
                    root=root, metrics=keras_metrics)

    report = ""
    try:
        diff = twin.twin_max_abs_diff(torch_model, splits["test"].x, tolerance=TWIN_TOLERANCE)
    except twin.TwinDivergence as divergence:  # the report names the first layer where the two differ
        diff, report = divergence.diff, divergence.report
    except twin.TwinMappingError as error:
        raise SystemExit(f"error: the two network files do not define the same network: {error}") from None
    metrics = {"torch": torch_metrics, "tensorflow": keras_metrics, "twin_max_abs_diff": diff, "width": config.width,
               "arch": config.arch, **extra}
    paths.metrics_path(root).write_text(json.dumps(metrics, indent=2) + "\n")

    print(f"\n{'framework':<12}{'test acc':>10}{'params':>9}{'seconds':>9}{'epochs':>8}")
    for name, entry in (("torch", torch_metrics), ("tensorflow", keras_metrics)):
        print(f"{name:<12}{entry['test_accuracy']:>10.4f}{entry['params']:>9}{entry['train_seconds']:>9.1f}{entry['epochs']:>8}")
    verdict = "ok" if diff <= TWIN_TOLERANCE else f"FAILED (> {TWIN_TOLERANCE:g})"
    print(f"twin check: PyTorch weights in the Keras network, max abs diff {diff:.2e} "
          f"on {len(splits['test'])} test images: {verdict}")
    if report:
        print(report)
    print(f"wrote {paths.metrics_path(root)}")
    if diff > TWIN_TOLERANCE:
        raise SystemExit(1)
    return metrics


def main(argv=None) -> dict:
    args = parse_args(argv)
    root, config, splits, spec = prepare(args)

    # Imported here, not at the top: `--help` and bad-data errors answer without loading frameworks.
    require_network(args.arch)
    from training import train_keras, train_torch

    trained = {
        "torch": train_torch.train(splits, config, spec, log_dir=paths.tensorboard_dir("torch", root),
                                   **hyperparameters(args)),
        "tensorflow": train_keras.train(splits, config, spec, log_dir=paths.tensorboard_dir("tensorflow", root),
                                        **hyperparameters(args)),
    }
    return finish(root, spec, splits, trained, config)



def build(root: Path, args: list) -> None:
    """The build graph's train step (core/registry.py TRAIN): train with `args` into `root`."""
    main([*args, "--artifacts", str(root)])

if __name__ == "__main__":
    main()
