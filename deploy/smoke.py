"""One sample digit through every target: where each answers, its label and its latency.

    python -m deploy.smoke                 # the last step of `make deploy-all`
    python -m deploy.smoke --index 7       # another image of the saved test split

The digit is one image of the saved test split (its true label is printed with it). Each target of
the registry (core/registry.py) is loaded, then timed on that one image: `latency ms` is that
first predict() call as a client sees it, so it includes what the target pays per call (a network
round trip for the servers, starting node for tfjs-node, starting Chromium for tfjs-chromium) and
a first call's set-up (a gRPC channel's connection, lazy initialisation). Steady-state latency is
what the benchmarks measure (`make bench-serving`, `make bench-edge`, `make bench-web`).
The table is printed and written to `<artifacts>/deploy-all.json`, ending with every target that did
not answer and why: "failed" (its build step or its call failed: exit 1), "not built" (its tools are
missing on this machine) or "not supported" (its runtime does not run this network); the last two
are no failure.
Servers must be running (`make serve`) and the web page built for the browser targets.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from core import paths, ports, registry, selection
from core import spec as specs
from training import data


def sample(root: Path, index: int) -> tuple[np.ndarray, str]:
    """Image `index` of the saved test split as a batch of one, and its true label."""
    test = data.load_split(paths.split_path(root))["test"]
    if not 0 <= index < len(test.y):
        raise ValueError(f"--index must lie in 0..{len(test.y) - 1}, got {index}")
    return test.x[index : index + 1], specs.load(root).labels[int(test.y[index])]


def build_status(name: str, root: Path) -> tuple[str, str] | None:
    """(status, reason) when the build did not make what target `name` runs ("failed", or "not built" /
    "not supported", which are no fault); None when it did (or no build ran here)."""
    from deploy.local import build

    step = registry.step_of(name)
    said = build.outcome(root, step) if step else None
    if not said or build.status_of(said) == "ok":
        return None
    return build.status_of(said), f"{step} {said}"


def _listening(base: str) -> bool:
    address = urlsplit(base)
    return ports.listening(address.hostname, address.port)


def ask(name: str, root: Path, endpoints, x: np.ndarray) -> dict:
    """One target's row: where it answers, its label and probability, and the call's latency."""
    row = {"target": name, "framework": registry.TARGETS[name].framework,
           "precision": registry.TARGETS[name].precision, "where": registry.where(name, root, endpoints)}
    if (base := registry.base_address(name, root, endpoints)) is not None:
        row["base"] = base  # http://host:port or grpc://host:port, for a client of one's own
    unbuilt = build_status(name, root)
    if unbuilt is not None:
        row["status"], row["error"] = unbuilt
        return row
    try:
        if base is not None and not _listening(base):  # fail now, not after the client's retries run out
            raise ConnectionRefusedError(f"nothing listens at {base}")
        predictor = registry.load(name, root=root, endpoints=endpoints)
        start = time.perf_counter()
        probabilities = np.asarray(predictor.predict(x))[0]
        row["latency_ms"] = (time.perf_counter() - start) * 1000
        row["label"] = specs.load(root).labels[int(probabilities.argmax())]
        row["probability"] = float(probabilities.max())
        if getattr(predictor, "backend", None):
            row["backend"] = predictor.backend
    except Exception as error:  # reported in the table; the other targets still answer
        row["status"], row["error"] = "failed", registry.describe_error(name, error)
        return row
    row["status"] = "ok"
    return row


def run(root: Path, endpoints, index: int = 0, progress=print, names=None) -> dict:
    """One image through each of `names` (default: every target), in table order."""
    x, truth = sample(root, index)
    rows = []
    names = list(names or registry.TARGETS)
    for number, name in enumerate(names, 1):
        progress(f"deploy-all: [{number}/{len(names)}] {name}")
        rows.append(ask(name, root, endpoints, x))
    return {"index": index, "true_label": truth, "targets": rows}


def table(result: dict) -> str:
    width = max(len(row["where"]) for row in result["targets"])
    name_width = max(len(row["target"]) for row in result["targets"]) + 2
    lines = [f"one test image (test split #{result['index']}, true label {result['true_label']}) through every target:",
             f"{'target':<{name_width}}{'answers at':<{width + 2}}{'label':>5}{'prob':>7}{'latency ms':>12}"]
    for row in result["targets"]:
        if "error" in row:
            lines.append(f"{row['target']:<{name_width}}{row['where']:<{width + 2}}  {row['status'].upper()}")
        else:
            lines.append(f"{row['target']:<{name_width}}{row['where']:<{width + 2}}{row['label']:>5}"
                         f"{row['probability']:>7.3f}{row['latency_ms']:>12.1f}")
    others = [row for row in result["targets"] if "error" in row]
    if others:
        lines.append(f"\n{len(others)} of {len(result['targets'])} targets did not answer:")
        lines += [f"  {row['target']}: {row['status']}: {row['error']}" for row in others]
    return "\n".join(lines)


def main(argv=None) -> None:
    from serving import endpoints as endpoints_mod

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=int, default=0, help="which image of the saved test split (default: 0)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--targets", default=None, help="targets or groups (default: $DIGITS_TARGETS, or all)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        result = run(root, endpoints_mod.resolve(), args.index, names=selection.pick(args.targets))
    except (FileNotFoundError, ValueError) as error:  # (a SelectionError is a ValueError)
        raise SystemExit(f"error: {error}") from None
    result["command"] = " ".join(["python -m deploy.smoke", *(sys.argv[1:] if argv is None else argv)])
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = root / "deploy-all.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n" + table(result))
    print(f"wrote {out}")
    failed = [row["target"] for row in result["targets"] if row["status"] == "failed"]
    if failed:
        raise SystemExit(f"deploy-all: {len(failed)} target(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
