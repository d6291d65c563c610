"""Which targets take your network: export, run and match, for every target, on a tiny training run.

    make check-network ARCH=resnet                       # a network of training/model_*.py
    make check-network ARCH=mine DATA=pictures.npz       # on your own data
    python -m deploy.check_network --arch cnn --epochs 1

Trains `--arch` for `--epochs` (1) into `<artifacts>/check-network/<arch>/`, builds every export
through the build graph (a step that fails or that a runtime refuses stops only what reads it),
then, target by target, says whether it **exports** (its build step's outcome), **runs** (its
Predictor loads and answers the whole test split: file targets in this process, the page's
runtimes in headless Chromium, the servers judged by loading what they would serve, the
archive's TorchScript or the SavedModel, without starting them) and **matches** (the parity
check of `make parity` against the eager model of its framework), with the reason where not.
Prints the table and writes `<artifacts>/check-network.json`; exits 1 when a target failed
(a target whose runtime refuses the network, or whose tools are missing here, is no failure).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core import paths, registry
from deploy import parity
from deploy.local import build


def check(root: Path, train_args: list, progress=print) -> list[dict]:
    """Build `root` with `train_args`, then one row per target: exports, runs, matches, why not."""
    results = build.ensure(root, args=train_args, isolate=True, keep_going=True, progress=progress)
    split = parity.test_split(root)
    expected = parity.references(root, split.x)
    rows = []
    for number, name in enumerate(registry.TARGETS, 1):
        progress(f"check-network: [{number}/{len(registry.TARGETS)}] {name}")
        step = registry.step_of(name)
        said = results.get(step, "built") if step else "built"
        row = {"target": name, "framework": registry.TARGETS[name].framework, "step": step, "build": said}
        if build.status_of(said) != "ok":
            rows.append({**row, "exports": False, "runs": None, "matches": None, "status": build.status_of(said),
                         "why": said})
            continue
        try:
            judged = parity.evaluate(name, root, None, split, expected, offline=True)
        except Exception as error:  # loads or answers wrongly: this target, not the others
            rows.append({**row, "exports": True, "runs": False, "matches": None, "status": "failed",
                         "why": registry.describe_error(name, error)})
            continue
        rows.append({**row, "exports": True, "runs": True, "matches": judged["passed"],
                     "status": "ok" if judged["passed"] else "failed", "why": "; ".join(judged["problems"]),
                     "accuracy": judged["accuracy"]})
    return rows


def table(rows: list[dict]) -> str:
    mark = {True: "yes", False: "NO", None: "-"}
    width = max(len(row["target"]) for row in rows) + 2
    lines = [f"{'target':<{width}}{'exports':>8}{'runs':>6}{'matches':>9}  why not"]
    for row in rows:
        lines.append(f"{row['target']:<{width}}{mark[row['exports']]:>8}{mark[row['runs']]:>6}"
                     f"{mark[row['matches']]:>9}  {row['why'][:160]}")
    counts = {status: sum(row["status"] == status for row in rows) for status in ("ok", "failed", *build.NO_FAULT)}
    lines.append(", ".join(f"{count} {status}" for status, count in counts.items()))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="cnn", help="the network (training --arch; default: cnn)")
    parser.add_argument("--data", type=Path, help="your own data (training --data), else the digits")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of the tiny run (default: 1)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    base = (args.artifacts or paths.artifacts_dir()).resolve()
    root = base / "check-network" / args.arch
    train_args = ["--arch", args.arch, "--epochs", str(args.epochs), "--no-augment",
                  *(["--data", str(args.data.resolve())] if args.data else [])]
    started = time.monotonic()
    rows = check(root, train_args)
    print("\n" + table(rows))
    out = base / "check-network.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"arch": args.arch, "data": str(args.data) if args.data else "digits",
                               "command": " ".join(["python -m deploy.check_network", *(sys.argv[1:] if argv is None
                                                                                        else argv)]),
                               "seconds": round(time.monotonic() - started, 1), "targets": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    failed = [row["target"] for row in rows if row["status"] == "failed"]
    if failed:
        raise SystemExit(f"check-network: {len(failed)} target(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
