"""Real headless Chromium draws a plain 7 (no crossbar, as most people draw it, unlike nearly every 7 in
scikit-learn's digits) with the mouse on the served page, and the page must read "7". The model is the
session's (trained with the default augmentation, few epochs); the page's reduced input must equal
Python's reduction of the pad's own pixels."""
import base64
import json
import os

import numpy as np
import pytest

from core import paths
from core import spec as core_spec
from tests.browser.conftest import run_node
from training.preprocess import picture_to_input
from web.tfjs import export

pytestmark = [pytest.mark.slow, pytest.mark.concerns("browser")]


def test_a_plain_seven_drawn_with_the_mouse_reads_seven(web_artifacts, web_server):
    screenshot = web_artifacts / "screenshots" / "plain-seven.png"
    env = os.environ | {"DIGITS_WEB_URL": web_server, "DIGITS_SCREENSHOT": str(screenshot),
                        "DIGITS_CHROMIUM_TOOLS": str(export.TFJS_DIR / "tools" / "chromium.js")}
    output = run_node([str(paths.REPO_ROOT / "tests" / "browser" / "draw_seven.mjs")], env)
    shown = json.loads(output.strip().splitlines()[-1])
    spec = core_spec.load(web_artifacts)
    values = np.array(shown["input"], dtype=np.float32).reshape(spec.item_shape)
    pad_png = base64.b64decode(shown["pad"].split(",", 1)[1])
    np.testing.assert_array_equal(picture_to_input(pad_png, spec), values)
    # a plain 7: ink along the top row, and in the middle rows only the thin stem (no crossbar)
    assert values[0].sum() >= 20 and all(np.count_nonzero(values[row]) <= 3 for row in (3, 4, 5)), values
    assert shown["label"] == "7", f"the page read the plain 7 as {shown['label']!r}; its input:\n{values}"
    assert screenshot.stat().st_size > 10_000
