"""Headless Debian Chromium draws digits on the served page and checks what it shows."""
import os

import pytest

from tests.browser.conftest import run_node

pytestmark = pytest.mark.slow


def test_drawing_in_chromium_shows_the_digit(web_artifacts, web_server):
    screenshot = web_artifacts / "screenshots" / "web-draw.png"
    env = os.environ | {
        "DIGITS_WEB": str(web_artifacts / "web"), "DIGITS_WEB_URL": web_server, "DIGITS_SCREENSHOT": str(screenshot),
    }
    output = run_node(["--test", "test/chromium/"], env)
    assert "# pass 1" in output and "# fail 0" in output, output
    assert screenshot.stat().st_size > 10_000  # a real page, not an empty image
