"""The Node tests of web/tfjs: the JS picture reductions and the JS contract check against Python's
vectors, tfjs (wasm) against Keras, for the digits and for a colour task."""
import os
import re

import pytest

from tests.browser.conftest import run_node

pytestmark = [pytest.mark.slow, pytest.mark.concerns("tfjs-node")]


def node_suite(root) -> str:
    output = run_node(["--test", "test/node/"], os.environ | {"DIGITS_WEB": str(root / "web")})
    # Every picture vector, contract case and both model tests ran: a silently empty suite would pass too.
    passed = int(re.search(r"^# pass (\d+)$", output, re.M).group(1))
    assert passed >= 120 and re.search(r"^# fail 0$", output, re.M), output
    assert "max abs diff to Keras" in output
    return output


def test_node_suite_passes(web_artifacts):
    node_suite(web_artifacts)


def test_node_suite_passes_for_a_colour_task(colour_web_artifacts):
    output = node_suite(colour_web_artifacts)
    assert re.search(r"# \d+ test images, max abs diff to Keras", output)
