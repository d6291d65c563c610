"""REPORT.md's reliability section: every fault the tests injected, with what they counted.

Reads bench/faults.json (`make bench TOOL=faults`, benchmarks/faults.py): one record per fault and target,
written by the fault tests through tests/faults.py. Nothing is measured here.
"""
from __future__ import annotations

from benchmarks.report.figures import missing, table


def section_faults(inputs) -> str:
    text = "## Reliability: faults injected and what every client saw\n\n"
    report = inputs.get("faults")
    if not report:
        return text + missing("faults")
    tests = report.get("tests", {})
    rows = []
    for entry in report.get("faults", []):
        counts = "; ".join(f"{key.replace('_', ' ')} {value}" for key, value in entry["counts"].items())
        outcome = tests.get(entry.get("test", ""), "-")
        rows.append([entry["fault"], entry["target"], counts, outcome])
    failed = sorted(name for name, outcome in tests.items() if outcome == "failed")
    text += ("Each row is one fault injected by a test of the suite into servers or builds of its own, with the "
             "counts that test asserted on (`" + report.get("command", "make bench TOOL=faults") + "`, "
             f"{len(tests)} tests" + (f", {report['seconds']} s" if report.get("seconds") else "")
             + "). A test passes only when every request got "
             "an answer or an explicit refusal and nothing waited past its deadline.\n\n")
    if not rows:
        return text + "*no fault test recorded anything*\n"
    text += table(["fault", "target", "counts", "test"], rows)
    if failed:
        text += "\nFailed: " + ", ".join(f"`{name}`" for name in failed) + "\n"
    return text
