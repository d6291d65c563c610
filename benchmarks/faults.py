"""Run the fault-injection tests and keep what each one measured (`make faults`).

    make faults                                   # = python -m benchmarks.faults
    python -m benchmarks.faults -k torchserve     # only the fault tests matching an expression

Every test that injects a fault (a killed or stopped worker, expiring keys, a restart or a new
version under load, connection floods, an interrupted build, ...) records its counts through
tests/faults.py. This runs those tests (the `fault` marker) with DIGITS_FAULTS_REPORT set, then
writes what they recorded, with each test's outcome, to <artifacts>/bench/faults.json, which
REPORT.md's reliability section reads (benchmarks/report_faults.py). Exits non-zero if a test failed:
a fault the project does not survive is the finding, and the JSON says which.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import machine, results
from core import paths


def read_records(path: Path) -> list[dict]:
    """The JSON lines the tests appended (none when no fault test ran)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def outcomes_of(junit_xml: Path) -> dict:
    """test id -> "passed" / "failed" / "skipped: <why>", from pytest's JUnit XML."""
    import xml.etree.ElementTree as ElementTree

    outcomes = {}
    for case in ElementTree.parse(junit_xml).getroot().iter("testcase"):
        name = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        elif (skipped := case.find("skipped")) is not None:
            outcomes[name] = "skipped: " + (skipped.get("message") or "")
        else:
            outcomes[name] = "passed"
    return outcomes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="expression", help="only the fault tests matching this pytest expression")
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="where bench/faults.json goes (default: artifacts/)")
    args = parser.parse_args(argv)
    root = args.artifacts or paths.artifacts_dir()
    with tempfile.TemporaryDirectory() as scratch:
        lines, junit = Path(scratch) / "faults.jsonl", Path(scratch) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-m", "fault", "-p", "no:cacheprovider", f"--junitxml={junit}"]
        command += ["-k", args.expression] if args.expression else []
        print("$ " + " ".join(command[2:]), flush=True)
        started = time.monotonic()
        done = subprocess.run(command, cwd=paths.REPO_ROOT, env={**os.environ, "DIGITS_FAULTS_REPORT": str(lines)})
        records = read_records(lines)
        tests = outcomes_of(junit) if junit.exists() else {}
    report = {"command": results.command("benchmarks.faults", argv), "machine": machine.describe(),
              "seconds": round(time.monotonic() - started, 1), "exit_code": done.returncode,
              "tests": tests, "faults": records}
    path = results.write(report, root, "faults")
    print(f"faults: {len(records)} records from {len(tests)} tests "
          f"({sum(o == 'failed' for o in tests.values())} failed) -> {path}")
    for entry in records:
        counts = ", ".join(f"{key} {value}" for key, value in entry["counts"].items())
        print(f"  {entry['fault']} | {entry['target']} | {counts}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
