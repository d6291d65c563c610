"""Train the reference model in PyTorch and in TensorFlow, check they are twins, write metrics.

    python -m training.train                    # both frameworks, width 1, 25 epochs
    python -m training.train --epochs 1         # the fast path tests use
    python -m training.train --data mine.npz    # your own x (N, 8, 8) 0..16 and y (N,) 0..9

Writes under the artifacts folder (`artifacts/` or $DIGITS_ARTIFACTS):
  spec.json                      the one source of truth every later stage reads
  data/split.npz                 the stratified train/val/test split (indices and arrays)
  torch/digits.pt                PyTorch weights + the config they were trained with + the spec
  tensorflow/digits.keras        the Keras model
  tensorboard/{torch,tensorflow} TensorBoard logs (`tensorboard --logdir artifacts/tensorboard`)
  metrics.json                   accuracy, parameters, time and epochs per framework, twin diff
  manifest.json                  every built artifact with its sha256 (see training/manifest.py)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from training import data, paths
from training.spec import WIDTHS, ModelConfig, build_spec, write_spec

TWIN_TOLERANCE = 1e-5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, shared by `training.train`, `training.distributed` and its workers."""
    parser.add_argument("--epochs", type=int, default=25, help="passes over the (shift-augmented) training split (default: 25)")
    parser.add_argument("--width", type=int, default=1, choices=WIDTHS, help="channel multiplier (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split and both trainings (default: 0)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (per worker when distributed; default: 32)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (x workers when distributed; default: 3e-3)")
    parser.add_argument("--data", type=Path, help="your own .npz instead of scikit-learn's digits")
    parser.add_argument("--artifacts", type=Path, help="output folder (default: $DIGITS_ARTIFACTS or ./artifacts)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    return args


def hyperparameters(args: argparse.Namespace) -> dict:
    return dict(epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, learning_rate=args.lr)


def prepare(args: argparse.Namespace) -> tuple[Path, ModelConfig, dict, dict]:
    """The artifacts folder, the network's config, the split (made and saved) and the spec (written)."""
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    config = ModelConfig(width=args.width)
    try:
        splits = data.prepare(args.seed, args.data, paths.split_path(root))
    except data.DataError as error:
        raise SystemExit(f"error: {error}")
    print(f"data: {', '.join(f'{name} {len(part)}' for name, part in splits.items())} "
          f"({args.data or 'scikit-learn digits'}), seed {args.seed}, width {args.width}")
    spec = build_spec(config, seed=args.seed, data_source=str(args.data or "sklearn.load_digits"))
    write_spec(spec, paths.spec_path(root))
    return root, config, splits, spec


def finish(root: Path, spec: dict, splits: dict, trained: dict, width: int, **extra) -> dict:
    """Save both trained models where every export looks, record them, run the twin check, write metrics.json.

    `trained` maps "torch" and "tensorflow" to (model, metrics entry); `extra` goes into metrics.json.
    """
    from training import manifest, twin
    from training.model_torch import save_checkpoint

    (torch_model, torch_metrics), (keras_model, keras_metrics) = trained["torch"], trained["tensorflow"]
    save_checkpoint(torch_model, spec, paths.torch_checkpoint_path(root), extra={"metrics": torch_metrics})
    paths.keras_model_path(root).parent.mkdir(parents=True, exist_ok=True)
    keras_model.save(paths.keras_model_path(root))
    manifest.record("torch_checkpoint", paths.torch_checkpoint_path(root), framework="torch", precision="fp32",
                    root=root, metrics=torch_metrics)
    manifest.record("keras_model", paths.keras_model_path(root), framework="tensorflow", precision="fp32",
                    root=root, metrics=keras_metrics)

    diff = twin.twin_max_abs_diff(torch_model, splits["test"].x)
    metrics = {"torch": torch_metrics, "tensorflow": keras_metrics, "twin_max_abs_diff": diff, "width": width, **extra}
    paths.metrics_path(root).write_text(json.dumps(metrics, indent=2) + "\n")

    print(f"\n{'framework':<12}{'test acc':>10}{'params':>9}{'seconds':>9}{'epochs':>8}")
    for name, entry in (("torch", torch_metrics), ("tensorflow", keras_metrics)):
        print(f"{name:<12}{entry['test_accuracy']:>10.4f}{entry['params']:>9}{entry['train_seconds']:>9.1f}{entry['epochs']:>8}")
    verdict = "ok" if diff <= TWIN_TOLERANCE else f"FAILED (> {TWIN_TOLERANCE:g})"
    print(f"twin check: PyTorch weights in the Keras network, max abs diff {diff:.2e} on {len(splits['test'])} test images: {verdict}")
    print(f"wrote {paths.metrics_path(root)}")
    if diff > TWIN_TOLERANCE:
        raise SystemExit(1)
    return metrics


def main(argv=None) -> dict:
    args = parse_args(argv)
    root, config, splits, spec = prepare(args)

    # Imported here, not at the top: `--help` and bad-data errors answer without loading frameworks.
    from training import train_keras, train_torch

    trained = {
        "torch": train_torch.train(splits, config, log_dir=paths.tensorboard_dir("torch", root), **hyperparameters(args)),
        "tensorflow": train_keras.train(splits, config, log_dir=paths.tensorboard_dir("tensorflow", root),
                                        **hyperparameters(args)),
    }
    return finish(root, spec, splits, trained, args.width)


if __name__ == "__main__":
    main()
