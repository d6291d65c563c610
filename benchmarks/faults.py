"""Run the fault-injection tests and the heavy batteries in full, and keep what each fault measured (`make faults`).

    make faults                                   # = python -m benchmarks faults
    python -m benchmarks faults -k torchserve     # only the tests matching an expression
    python -m benchmarks faults --from-run faults.jsonl junit.xml   # what a test run already recorded:
        # DIGITS_FAULTS_REPORT=$PWD/faults.jsonl make test PYTEST_ARGS=--junitxml=$PWD/junit.xml

Every test that injects a fault (a killed or stopped worker, expiring keys, a restart or a new
version under load, connection floods, an interrupted build, ...) records its counts through
tests/faults.py. This runs those tests (the `fault` marker) and the batteries `make test` runs in a
reduced form (the `battery` marker) in their full form (DIGITS_BATTERY=full), with DIGITS_FAULTS_REPORT set, then
writes what they recorded, with each test's outcome, to <artifacts>/bench/faults.json, which
REPORT.md's reliability section reads (benchmarks/report/faults.py). Exits non-zero if a test failed:
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
    parser.add_argument("--from-run", nargs=2, type=Path, metavar=("RECORDS", "JUNIT"),
                        help="run nothing: gather the records and JUnit XML of a test run made with "
                             "DIGITS_FAULTS_REPORT=RECORDS and --junitxml=JUNIT")
    args = parser.parse_args(argv)
    root = args.artifacts or paths.artifacts_dir()
    if args.from_run:
        return write_report(root, argv, *args.from_run, seconds=None, exit_code=None)
    with tempfile.TemporaryDirectory() as scratch:
        lines, junit = Path(scratch) / "faults.jsonl", Path(scratch) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-m", "fault or battery", "-p", "no:cacheprovider",
                   f"--junitxml={junit}"]
        command += ["-k", args.expression] if args.expression else []
        print("$ " + " ".join(command[2:]), flush=True)
        started = time.monotonic()
        environment = {**os.environ, "DIGITS_FAULTS_REPORT": str(lines), "DIGITS_BATTERY": "full"}
        done = subprocess.run(command, cwd=paths.REPO_ROOT, env=environment)
        write_report(root, argv, lines, junit, round(time.monotonic() - started, 1), done.returncode)
    return done.returncode


def write_report(root: Path, argv, lines: Path, junit: Path, seconds: float | None, exit_code: int | None) -> int:
    """<root>/bench/faults.json from a run's records and JUnit XML; prints what each fault counted.
    1 if one of the fault tests failed, else 0. Of a whole suite's run (`exit_code` None) only the tests
    of the files that recorded a fault count."""
    records = read_records(lines)
    files = {entry["test"].split("::")[0] for entry in records}
    tests = {name: outcome for name, outcome in (outcomes_of(junit) if junit.exists() else {}).items()
             if exit_code is not None or name.split("::")[0] in files}
    report = {"command": results.command(__name__, argv), "machine": machine.describe(),
              "seconds": seconds, "exit_code": exit_code, "tests": tests, "faults": records}
    path = results.write(report, root, "faults")
    print(f"faults: {len(records)} records from {len(tests)} tests "
          f"({sum(o == 'failed' for o in tests.values())} failed) -> {path}")
    for entry in records:
        counts = ", ".join(f"{key} {value}" for key, value in entry["counts"].items())
        print(f"  {entry['fault']} | {entry['target']} | {counts}")
    return int(any(outcome == "failed" for outcome in tests.values()))
