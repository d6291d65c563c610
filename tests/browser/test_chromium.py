"""Headless Debian Chromium on the served page: it draws digits on the digits page, and uploads
pictures to the page of any task (the digits and a colour task with its own labels)."""
import os
import re

import pytest

from tests.browser.conftest import run_node
from tests.conftest import SECOND_TASK_NAME
from training import example_data

pytestmark = pytest.mark.slow


def chromium_suite(root, url) -> str:
    screenshots = root / "screenshots"
    env = os.environ | {
        "DIGITS_WEB": str(root / "web"), "DIGITS_WEB_URL": url,
        "DIGITS_SCREENSHOT": str(screenshots / "web-draw.png"),
        "DIGITS_UPLOAD_SCREENSHOT": str(screenshots / "web-upload.png"),
    }
    return run_node(["--test", "test/chromium/"], env)


def counts(output: str) -> dict:
    return {key: int(re.search(rf"^# {key} (\d+)$", output, re.M).group(1)) for key in ("pass", "fail", "skipped")}


def test_drawing_and_uploading_in_chromium_show_the_digit(web_artifacts, web_server):
    output = chromium_suite(web_artifacts, web_server)
    assert counts(output) == {"pass": 2, "fail": 0, "skipped": 0}, output
    for name in ("web-draw.png", "web-upload.png"):
        assert (web_artifacts / "screenshots" / name).stat().st_size > 10_000  # a real page, not an empty image


def test_a_colour_task_page_reads_uploaded_pictures_with_its_labels(colour_web_artifacts, colour_web_server):
    """No pad (its reduction is the plain resize), the task's name and labels, uploads read as Keras reads them."""
    output = chromium_suite(colour_web_artifacts, colour_web_server)
    assert counts(output) == {"pass": 1, "fail": 0, "skipped": 1}, output
    assert "the task has no drawing pad" in output
    assert (colour_web_artifacts / "screenshots" / "web-upload.png").stat().st_size > 10_000
    spec = (colour_web_artifacts / "web" / "spec.json").read_text()
    assert SECOND_TASK_NAME in spec and all(label in spec for label in example_data.LABELS)
