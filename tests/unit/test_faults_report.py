"""The fault tests' records: written only when asked, read back by `make bench TOOL=faults`, shown in REPORT.md."""
from __future__ import annotations

import json

from benchmarks import faults
from benchmarks.report import layout
from tests import faults as recorder


def test_a_record_is_written_only_when_a_report_file_is_named(tmp_path, monkeypatch):
    lines = tmp_path / "faults.jsonl"
    monkeypatch.delenv(recorder.ENVIRONMENT, raising=False)
    recorder.record("worker stopped", "tfserving-rest", sent=3)
    assert not lines.exists()
    monkeypatch.setenv(recorder.ENVIRONMENT, str(lines))
    recorder.record("worker stopped", "tfserving-rest", sent=3, answered=2, refused=1)
    recorder.record_load("server restarted", "tfserving-grpc",
                         {"scheduled": 40, "answered": 39, "refused": 0, "reset": 1, "timed_out": 0, "errors": 0,
                          "not_sent": 0, "in_flight": 0, "kinds": {"reset: CANCELLED": 1}, "examples": {}})
    first, second = faults.read_records(lines)
    assert first["fault"] == "worker stopped" and first["counts"] == {"sent": 3, "answered": 2, "refused": 1}
    assert first["test"].startswith("tests/unit/test_faults_report.py::")
    # only the outcomes that happened, and the kinds of failure in words
    assert second["counts"] == {"scheduled": 40, "answered": 39, "reset": 1, "in_flight": 0,
                                "failures": "reset: CANCELLED x1"}


def test_outcomes_are_read_from_pytests_junit_xml(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text("""<testsuites><testsuite>
      <testcase classname="tests.integration.test_x" name="test_ok"/>
      <testcase classname="tests.integration.test_x" name="test_bad"><failure message="boom"/></testcase>
      <testcase classname="tests.integration.test_x" name="test_gone"><skipped message="no GPU"/></testcase>
    </testsuite></testsuites>""")
    assert faults.outcomes_of(junit) == {"tests/integration/test_x.py::test_ok": "passed",
                                         "tests/integration/test_x.py::test_bad": "failed",
                                         "tests/integration/test_x.py::test_gone": "skipped: no GPU"}


def test_report_lists_every_fault_with_its_counts_and_names_failed_tests(tmp_path):
    root = tmp_path / "artifacts"
    (root / "bench").mkdir(parents=True)
    test = "tests/integration/test_x.py::test_stop"
    (root / "bench" / "faults.json").write_text(json.dumps({
        "command": "python -m benchmarks faults", "seconds": 61.5, "exit_code": 1,
        "tests": {test: "passed", "tests/integration/test_x.py::test_flood": "failed"},
        "faults": [{"fault": "worker SIGSTOPped under 4 clients", "target": "torchserve-rest",
                    "counts": {"sent": 120, "answered": 117, "explicit_errors": 3, "longest_wait_s": 4.2},
                    "test": test}]}))
    text = layout.build(root, tmp_path / "REPORT.md")
    section = text.split("## Reliability: faults injected and what every client saw")[1].split("\n## ")[0]
    assert ("| worker SIGSTOPped under 4 clients | torchserve-rest | sent 120; answered 117; explicit errors 3; "
            "longest wait s 4.2 | passed |") in section
    assert "Failed: `tests/integration/test_x.py::test_flood`" in section


def test_report_without_fault_counts_says_how_to_measure_them(tmp_path):
    text = layout.build(tmp_path / "artifacts", tmp_path / "REPORT.md")
    assert "*not measured: run `make bench TOOL=faults` (writes `artifacts/bench/faults.json`)*" in text


def test_a_whole_suites_run_is_gathered_without_running_anything(tmp_path):
    lines, junit = tmp_path / "faults.jsonl", tmp_path / "junit.xml"
    lines.write_text('{"fault": "replica killed", "target": "rayserve-v2-rest", "counts": {"answered": 9}, '
                     '"test": "tests/integration/test_r.py::test_kill"}\n')
    junit.write_text("""<testsuites><testsuite>
      <testcase classname="tests.integration.test_r" name="test_kill"/>
      <testcase classname="tests.integration.test_r" name="test_stop"><failure message="hung"/></testcase>
      <testcase classname="tests.unit.test_other" name="test_unrelated"/>
    </testsuite></testsuites>""")
    root = tmp_path / "artifacts"
    assert faults.main(["--artifacts", str(root), "--from-run", str(lines), str(junit)]) == 1  # test_stop failed
    written = json.loads((root / "bench" / "faults.json").read_text())
    assert written["tests"] == {"tests/integration/test_r.py::test_kill": "passed",
                                "tests/integration/test_r.py::test_stop": "failed"}
    assert [entry["target"] for entry in written["faults"]] == ["rayserve-v2-rest"]
