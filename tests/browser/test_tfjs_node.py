"""The Node tests of web/tfjs: the JS reduction against Python's vectors, tfjs (wasm) against Keras."""
import os
import re

import pytest

from tests.browser.conftest import run_node

pytestmark = pytest.mark.slow


def test_node_suite_passes(web_artifacts):
    env = os.environ | {"DIGITS_WEB": str(web_artifacts / "web")}
    output = run_node(["--test", "test/node/"], env)
    # Every reduction vector and both model tests ran: a silently empty suite would pass too.
    passed = int(re.search(r"^# pass (\d+)$", output, re.M).group(1))
    assert passed >= 45 and re.search(r"^# fail 0$", output, re.M), output
    assert "max abs diff to Keras" in output
