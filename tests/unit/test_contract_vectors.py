"""core.contract.check_batch on the shared cases web/tfjs/fixtures.py writes for the page's twin
(page/contract.js, run on the same cases by web/tfjs/test/node/contract.test.js)."""
import numpy as np
import pytest

from core.contract import ContractError, check_batch
from core.spec import Spec
from web.tfjs import fixtures

CASES = fixtures.contract_cases()
SPECS = {name: Spec(data) for name, data in CASES["specs"].items()}


def test_there_are_good_and_bad_cases():
    assert sum("expected" in case for case in CASES["cases"]) >= 4
    assert sum("error" in case for case in CASES["cases"]) >= 12


@pytest.mark.parametrize("case", CASES["cases"], ids=[case["name"] for case in CASES["cases"]])
def test_case(case):
    batch = fixtures.decode_special(case["batch"])
    if "error" in case:
        with pytest.raises(ContractError) as caught:
            check_batch(batch, SPECS[case["spec"]], **case["options"])
        assert case["error"] in str(caught.value)
        return
    checked = check_batch(batch, SPECS[case["spec"]], **case["options"])
    assert list(checked.shape) == case["shape"] and checked.dtype == np.float32
    # The JSON holds each float32 as the double it is exactly: equal bit for bit.
    np.testing.assert_array_equal(checked.ravel(), np.asarray(case["expected"], np.float32))


def test_the_vectors_are_valid_json():
    """No NaN or infinity reaches the file: JSON.parse would refuse it."""
    import json

    json.dumps(CASES, allow_nan=False)
    json.dumps(fixtures.pictures(), allow_nan=False)
