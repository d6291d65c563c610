"""How well the digits model reads digits people draw and print, with and without augmentation.

    make bench TOOL=handwriting                               # = python -m benchmarks handwriting
    python -m benchmarks handwriting --epochs 2 --per-style 2 --per-font 1     # a quick check

The held-out set (training/heldout.py) is drawn with the page's pad and printed in fonts, from styles,
fonts and random streams training never uses, and reduced by the page's own reduction. Two models
read it, per framework:
  augmented  the model in <artifacts> (what `make train` built; built here first when missing)
  plain      the same training flags with --no-augment, trained into <artifacts>/handwriting/plain
             through the build graph (deploy/local/build.py; reused while its flags are unchanged)
With --epochs both are trained into <artifacts>/handwriting/{augmented,plain} with that many epochs.
Writes <artifacts>/bench/handwriting.json: accuracy per digit, drawn and printed, per model and
framework, the test-split accuracy and training time of each.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, results
from core import paths
from training import heldout

GOAL = {"drawn": 0.95, "printed": 0.90}
MODELS = ("plain", "augmented")  # before and after


def _without_augment_flags(args: list) -> list:
    return [arg for arg in args if arg not in ("--augment", "--no-augment")]


def build_models(root: Path, epochs: int | None) -> dict[str, tuple[Path, list]]:
    """{model: (folder, training flags)}, each trained through the build graph when missing or stale."""
    from deploy.local import build as graph

    def progress(line):
        print(f"  {line}", flush=True)

    if epochs is None:
        graph.ensure(root, only=("train",), progress=progress)  # keeps the model trained here
        record = json.loads(graph.record_path(root, "train").read_text())
        base = _without_augment_flags(record["inputs"].get("args", []))
        if "--no-augment" in record["inputs"].get("args", []):
            raise SystemExit(f"error: the model in {root} was trained with --no-augment: run `make train` first")
        folders = {"augmented": (root, record["inputs"].get("args", [])), "plain": (root / "handwriting" / "plain",
                                                                                   [*base, "--no-augment"])}
    else:
        base = ["--epochs", str(epochs), "--seed", "0"]
        folders = {name: (root / "handwriting" / name, [*base, "--augment" if name == "augmented" else "--no-augment"])
                   for name in MODELS}
    for name, (folder, args) in folders.items():
        if folder != root:
            print(f"== {name}: {folder} (training flags: {' '.join(args)})", flush=True)
            graph.ensure(folder, only=("train",), args=args, progress=progress)
    return folders


def predictors(folder: Path) -> dict:
    """{framework: images -> labels} for the two trained models in `folder`."""
    import keras
    import torch

    from training.model_torch import load_checkpoint

    torch_model, _ = load_checkpoint(paths.torch_checkpoint_path(folder))
    keras_model = keras.models.load_model(paths.keras_model_path(folder))

    def torch_labels(x):
        with torch.no_grad():
            return torch_model(torch.from_numpy(x)).argmax(dim=1).numpy()

    return {"torch": torch_labels,
            "tensorflow": lambda x: keras_model.predict(x, verbose=0, batch_size=256).argmax(axis=1)}


def score(predicted: np.ndarray, cases: list, labels: tuple) -> dict:
    """Accuracy overall, per digit and per style or font of one kind of held-out case."""
    truth = np.array([case.label for case in cases])
    right = predicted == truth
    styles = {}
    for case, ok in zip(cases, right, strict=False):
        styles.setdefault(f"{labels[case.label]} {case.style}", []).append(ok)
    return {"accuracy": round(float(right.mean()), 4), "count": len(cases),
            "per_digit": {labels[k]: round(float(right[truth == k].mean()), 4) for k in sorted(set(truth))},
            "per_style": {name: round(float(np.mean(oks)), 4) for name, oks in sorted(styles.items())}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, help="train both models afresh with this many epochs "
                        "(default: the augmented model is the one in the artifacts folder)")
    parser.add_argument("--per-style", type=int, default=heldout.DRAWN_PER_STYLE,
                        help=f"drawn digits per stroke style (default: {heldout.DRAWN_PER_STYLE})")
    parser.add_argument("--per-font", type=int, default=heldout.PRINTED_PER_FONT,
                        help=f"printed digits per font and digit (default: {heldout.PRINTED_PER_FONT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out set (default: 0)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    started = time.monotonic()
    from core import spec as core_spec

    folders = build_models(root, args.epochs)
    spec = core_spec.load(folders["augmented"][0])
    if spec.reduction.get("kind") != "ink_blocks":
        raise SystemExit(f"error: the model in {folders['augmented'][0]} is not a drawing task (its reduction is "
                         f"{spec.reduction.get('kind')!r}); the held-out set is digits")
    print("== the held-out set: drawn on the pad, printed in held-out fonts", flush=True)
    cases = {"drawn": heldout.drawn(spec, args.seed, args.per_style),
             "printed": heldout.printed(spec, args.seed, args.per_font)}
    labels = tuple(spec.labels)
    report = {"command": results.command(__name__, argv), "machine": machine.describe(),
              "seed": args.seed, "goal": GOAL, "cases": {kind: len(found) for kind, found in cases.items()},
              "page_framework": "tensorflow", "models": {}}
    for name in MODELS:
        folder, flags = folders[name]
        metrics = json.loads(paths.metrics_path(folder).read_text())
        read = predictors(folder)
        entry = {"folder": str(folder), "train_args": flags,
                 "test_accuracy": {fw: metrics[fw]["test_accuracy"] for fw in read},
                 "train_seconds": {fw: metrics[fw]["train_seconds"] for fw in read}, "frameworks": {}}
        for framework, labels_of in read.items():
            entry["frameworks"][framework] = {
                kind: score(labels_of(np.stack([case.values for case in found])), found, labels)
                for kind, found in cases.items()}
            shown = ", ".join(f"{kind} {entry['frameworks'][framework][kind]['accuracy']:.3f}" for kind in cases)
            print(f"  {name:<10}{framework:<11}{shown}, test split {entry['test_accuracy'][framework]:.4f}", flush=True)
        report["models"][name] = entry
    report["seconds"] = round(time.monotonic() - started, 1)
    out = results.write(report, root, "handwriting")
    _print_table(report, labels)
    print(f"\nwrote {out} in {report['seconds']:.0f} s")
    return report


def _print_table(report: dict, labels: tuple) -> None:
    framework = report["page_framework"]
    print(f"\nper digit, {framework} (the page's model): plain -> augmented")
    print(f"{'digit':<7}{'drawn':>16}{'printed':>16}")
    for label in labels:
        cells = []
        for kind in ("drawn", "printed"):
            before, after = (report["models"][m]["frameworks"][framework][kind]["per_digit"].get(label) for m in MODELS)
            cells.append(f"{before:.2f} -> {after:.2f}")
        print(f"{label:<7}{cells[0]:>16}{cells[1]:>16}")
