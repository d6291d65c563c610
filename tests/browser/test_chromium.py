"""Headless Debian Chromium on the served page: it draws digits on the digits page, and uploads
pictures to the page of any task (the digits and a colour task with its own labels); every runtime
(TF.js, onnxruntime-web, LiteRT.js on the Keras and the litert-torch file) answers in its own row
with its source framework's label, and a missing or damaged model file shows its error in its row."""
import json
import os
import re

import numpy as np
import pytest

from tests.browser.conftest import run_node
from tests.conftest import SECOND_TASK_NAME
from training import example_data

pytestmark = [pytest.mark.slow, pytest.mark.concerns("browser")]


def chromium_suite(root, url) -> str:
    screenshots = root / "screenshots"
    env = os.environ | {
        "DIGITS_WEB": str(root / "web"), "DIGITS_WEB_URL": url,
        "DIGITS_SCREENSHOT": str(screenshots / "web-draw.png"),
        "DIGITS_UPLOAD_SCREENSHOT": str(screenshots / "web-upload.png"),
        "DIGITS_RUNTIMES_SCREENSHOT": str(screenshots / "web-runtimes.png"),
        "DIGITS_ROWS_OUT": str(root / "screenshots" / "rows.json"),
    }
    return run_node(["--test", "test/chromium/"], env)


def counts(output: str) -> dict:
    return {key: int(re.search(rf"^# {key} (\d+)$", output, re.M).group(1)) for key in ("pass", "fail", "skipped")}


def rows_match_their_references(root) -> int:
    """Each row's label for each input the page saw is its source framework's Python label; the count."""
    from core import registry
    from deploy import parity

    seen = json.loads((root / "screenshots" / "rows.json").read_text())
    spec = json.loads((root / "spec.json").read_text())
    x = np.asarray([item["input"] for item in seen["inputs"]], np.float32).reshape(-1, *spec["input"]["shape"][1:])
    references = {framework: registry.load(name, root).predict(x) for framework, name in registry.REFERENCES.items()}
    expected = {framework: np.asarray(spec["labels"])[p.argmax(1)] for framework, p in references.items()}
    # An int8 row is held to the reference's label where int8 can tell the top two apart (deploy/parity.py):
    # more than one output quantization step between them.
    rows = {entry["name"]: entry for entry in json.loads((root / "web" / "runtimes.json").read_text())["runtimes"]}
    judged = {name: parity.margins(references[entry["framework"]]) > (parity.output_step(entry["source"], root) or 0)
              if entry["precision"] == "int8" else np.ones(len(x), bool) for name, entry in rows.items()}
    # litert-torch: LiteRT.js on the PyTorch model converted by litert-torch, held to torch-eager like onnxruntime-web.
    assert set(seen["frameworks"]) >= {"tfjs", "onnxruntime-web", "litert", "litert-torch"}
    assert seen["frameworks"]["litert-torch"] == seen["frameworks"]["onnxruntime-web"] == "torch"
    for index, item in enumerate(seen["inputs"]):
        for runtime, label in item["labels"].items():
            if judged[runtime][index]:
                assert label == expected[seen["frameworks"][runtime]][index], (runtime, index, item)
    return len(seen["inputs"]) * len(seen["frameworks"])


def test_drawing_and_uploading_in_chromium_show_the_digit(web_artifacts, web_server):
    output = chromium_suite(web_artifacts, web_server)
    assert counts(output) == {"pass": 5, "fail": 0, "skipped": 0}, output
    assert rows_match_their_references(web_artifacts) >= 12  # 3 drawn digits x 4 rows
    for name in ("web-draw.png", "web-upload.png", "web-runtimes.png"):
        assert (web_artifacts / "screenshots" / name).stat().st_size > 10_000  # a real page, not an empty image


def test_a_colour_task_page_reads_uploaded_pictures_with_its_labels(colour_web_artifacts, colour_web_server):
    """No pad (its reduction is the plain resize), the task's name and labels, uploads read as Keras reads them."""
    output = chromium_suite(colour_web_artifacts, colour_web_server)
    assert counts(output) == {"pass": 4, "fail": 0, "skipped": 1}, output
    assert "the task has no drawing pad" in output
    assert rows_match_their_references(colour_web_artifacts) >= 6
    assert (colour_web_artifacts / "screenshots" / "web-upload.png").stat().st_size > 10_000
    spec = (colour_web_artifacts / "web" / "spec.json").read_text()
    assert SECOND_TASK_NAME in spec and all(label in spec for label in example_data.LABELS)
