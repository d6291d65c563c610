"""The parity matrix: every registered target on the saved test split, held to its source framework.

    python -m deploy.parity                        # every target; needs `make serve` running, web built
    python -m deploy.parity --targets onnx-fp32 tflite-int8
    make parity                                    # the same, over ./artifacts

Each target (core/registry.py) predicts the whole test split in one batch and is compared with
the eager model of the framework that trained its weights (`registry.reference_for`):
  fp32: max abs probability difference <= 1e-4, and identical labels wherever the reference's top
        two probabilities are further apart than twice that (closer ones may swap within tolerance);
  int8: on the images where the reference's top two probabilities are more than one output
        quantization step apart (the rows int8 can tell apart; the row says how many it judged):
        the reference's label on >= 98% of them, accuracy at most 1 point below the reference's.
Writes `<artifacts>/parity.json` and the markdown matrix `<artifacts>/parity.md`, prints the
matrix, and exits 1 when a target fails. tests/parity/test_every_target.py runs the same checks.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core import manifest, paths, registry, selection
from training import data

FP32_TOLERANCE = 1e-4  # max abs probability difference to the reference
INT8_AGREEMENT = 0.98  # share of images with the reference's label
INT8_ACCURACY_DROP = 0.01  # at most 1 percentage point below the reference


def test_split(root: Path):
    """The saved test split (x (N, 8, 8) float32 0..16, y (N,)), the golden cases of every check."""
    return data.load_split(paths.split_path(root))["test"]


def references(root: Path, x: np.ndarray) -> dict:
    """The eager reference's probabilities on `x`, by reference target name."""
    return {name: registry.load(name, root=root).predict(x) for name in registry.REFERENCES.values()}


def artifact_bytes(name: str, root: Path) -> int | None:
    entry = manifest.load(root).get(registry.artifact_id(name, root) or "")
    return entry["bytes"] if entry else None


def margins(probabilities: np.ndarray) -> np.ndarray:
    """How far each row's most likely class is ahead of the second (0 for a tie)."""
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


def judge(precision: str, got: np.ndarray, expected: np.ndarray, y: np.ndarray, step: float | None = None) -> dict:
    """The row's figures and verdict: `problems` is empty when the target passes.

    `step` is an int8 target's output quantization step (its labels are judged only on the rows
    where the reference is more confident than that).
    """
    if got.shape != expected.shape or got.dtype != np.float32:
        return {"problems": [f"answered {got.dtype} {got.shape}, expected float32 {expected.shape}"], "passed": False}
    labels, reference_labels = got.argmax(axis=1), expected.argmax(axis=1)
    row = {
        "accuracy": float(np.mean(labels == y)),
        "reference_accuracy": float(np.mean(reference_labels == y)),
        "label_agreement": float(np.mean(labels == reference_labels)),
        "max_abs_diff": float(np.abs(got - expected).max()),
    }
    problems = []
    if precision == "int8":
        judged = margins(expected) > (step or 1 / 256)
        row["judged_rows"] = int(judged.sum())
        if judged.any():
            agreement = float(np.mean(labels[judged] == reference_labels[judged]))
            accuracy = float(np.mean(labels[judged] == y[judged]))
            reference = float(np.mean(reference_labels[judged] == y[judged]))
            row["judged_label_agreement"] = agreement
            if agreement < INT8_AGREEMENT:
                problems.append(f"label agreement {agreement:.4f} < {INT8_AGREEMENT} on the {row['judged_rows']} "
                                "rows the reference is confident on")
            if accuracy < reference - INT8_ACCURACY_DROP:
                problems.append(f"accuracy {accuracy:.4f} more than 1 point below {reference:.4f} on the "
                                f"{row['judged_rows']} rows the reference is confident on")
    else:
        judged = margins(expected) > 2 * FP32_TOLERANCE  # closer rows may swap labels within the tolerance
        row["judged_rows"] = int(judged.sum())
        differ = int(np.sum(labels[judged] != reference_labels[judged]))
        if differ:
            problems.append(f"{differ} labels differ from the reference")
        if not row["max_abs_diff"] <= FP32_TOLERANCE:
            problems.append(f"max abs diff {row['max_abs_diff']:.2e} > {FP32_TOLERANCE:g}")
    return {**row, "problems": problems, "passed": not problems}


def output_step(artifact: str | None, root: Path) -> float | None:
    """The output quantization step an int8 artifact's manifest entry records (None if it records none)."""
    quantization = manifest.load(root).get(artifact or "", {}).get("quantization") or {}
    return (quantization.get("output") or {}).get("scale")


def evaluate(name: str, root: Path, endpoints, split, expected: dict, offline: bool = False) -> dict:
    """One target's row of the matrix (it predicts the whole split in one call; a server row with
    `offline`: what it would serve, loaded in-process)."""
    target = registry.TARGETS[name]
    predictor = registry.load(name, root=root, endpoints=endpoints, offline=offline)
    start = time.perf_counter()
    got = np.asarray(predictor.predict(split.x))
    seconds = time.perf_counter() - start
    reference = registry.reference_for(name)
    row = {"target": name, "framework": target.framework, "precision": target.precision, "kind": target.kind,
           "where": registry.where(name, root, endpoints), "reference": reference,
           "artifact": registry.artifact_id(name, root), "artifact_bytes": artifact_bytes(name, root),
           "images": len(split.y), "seconds": seconds}
    if getattr(predictor, "backend", None):
        row["backend"] = predictor.backend  # the browser targets say which tfjs backend ran
    step = output_step(row["artifact"], root) if target.precision == "int8" else None
    return {**row, **judge(target.precision, got, expected[reference], split.y, step)}


def run(root: Path, endpoints, names=None, progress=print) -> list[dict]:
    """Every target's row (or those in `names`), in registry order."""
    split = test_split(root)
    expected = references(root, split.x)
    rows = []
    for number, name in enumerate(names or registry.TARGETS, 1):
        progress(f"parity: [{number}/{len(names or registry.TARGETS)}] {name}")
        try:
            rows.append(evaluate(name, root, endpoints, split, expected))
        except Exception as error:  # a target that cannot answer is a failed row, the rest still run
            target = registry.TARGETS[name]
            rows.append({"target": name, "framework": target.framework, "precision": target.precision,
                         "kind": target.kind, "where": registry.where(name, root, endpoints),
                         "artifact_bytes": artifact_bytes(name, root), "passed": False,
                         "problems": [registry.describe_error(name, error)]})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| target | framework | precision | answers at | accuracy | label agreement | rows judged | max abs diff "
             "| bytes | ok |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        figures = (f"{row['accuracy']:.4f} | {row['label_agreement']:.4f} | {row['judged_rows']} | "
                   f"{row['max_abs_diff']:.1e}" if "accuracy" in row else "- | - | - | -")
        size = f"{row['artifact_bytes']:,}" if row.get("artifact_bytes") else "-"
        verdict = "yes" if row["passed"] else "NO: " + "; ".join(row["problems"])
        where = row["where"] + (f" [{row['backend']}]" if row.get("backend") else "")
        lines.append(f"| {row['target']} | {row['framework']} | {row['precision']} | {where} | {figures} | "
                     f"{size} | {verdict} |")
    return "\n".join(lines) + "\n"


def write(rows: list[dict], root: Path, command: str) -> tuple[Path, Path]:
    report = {
        "command": command,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checks": {"fp32_max_abs_diff": FP32_TOLERANCE, "fp32_label_agreement": 1.0,
                   "fp32_labels_judged_where_the_reference_margin_exceeds": 2 * FP32_TOLERANCE,
                   "int8_label_agreement": INT8_AGREEMENT, "int8_accuracy_drop": INT8_ACCURACY_DROP,
                   "int8_judged_where_the_reference_margin_exceeds": "one output quantization step"},
        "passed": all(row["passed"] for row in rows),
        "targets": rows,
    }
    json_path, md_path = root / "parity.json", root / "parity.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(rows))
    return json_path, md_path


def main(argv=None) -> None:
    from serving import endpoints as endpoints_mod

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default=None,
                        help="targets or groups, e.g. \"onnx-fp32 edge\" (default: $DIGITS_TARGETS, or every target)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        names = selection.pick(args.targets)
    except selection.SelectionError as error:
        parser.error(str(error))
    try:
        test_split(root)
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}: run `make train` first") from None
    rows = run(root, endpoints_mod.resolve(), names)
    json_path, md_path = write(rows, root,
                               " ".join(["python -m deploy.parity", *(sys.argv[1:] if argv is None else argv)]))
    print("\n" + markdown(rows))
    print(f"wrote {json_path} and {md_path}")
    failed = [row["target"] for row in rows if not row["passed"]]
    if failed:
        raise SystemExit(f"parity: {len(failed)} target(s) failed: {', '.join(failed)}")
    print(f"parity: all {len(rows)} targets agree with their reference")


if __name__ == "__main__":
    main()
