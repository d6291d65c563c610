"""What clients cost a KServe server's log: dropped half-sent bodies, normal requests, an unknown model.

On KServe's torch ModelServer of the test's own (started by the runner, so its log goes through the
log pump): 200 clients that send half a body and go away, 200 normal predictions and 50 requests for
a model it does not serve grow server.log by under LOG_GROWTH bytes, with no traceback and no
access line. Before (kserve's defaults): 10 KB of tracebacks per dropped client, 1.4 KB per unknown
model, an access line per request.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import requests

from benchmarks import flood
from tests.integration.own_servers import own_servers

pytestmark = [pytest.mark.slow, pytest.mark.concerns("kserve-torch")]
CLIENTS = 200
LOG_GROWTH = 100_000  # bytes


def v2_body(spec, batch: np.ndarray) -> dict:
    return {"inputs": [{"name": spec.input_name, "shape": list(batch.shape), "datatype": "FP32",
                        "data": batch.astype(np.float32).ravel().tolist()}]}


def test_dropped_bodies_and_normal_requests_leave_a_small_quiet_log(trained_artifacts, tmp_path, spec, test_split):
    with own_servers(trained_artifacts, tmp_path, only=("kserve-torch",)) as served:
        host, port = served.endpoints.host, served.endpoints.ports["kserve_torch_rest"]
        infer = f"/v2/models/{spec.model_name}/infer"
        log = served.root / "run" / "kserve-torch" / "server.log"
        before = log.stat().st_size
        body = v2_body(spec, test_split.x[:2])
        with requests.Session() as session:
            for index in range(CLIENTS):
                assert flood.drop_half_bodies(host, port, infer, 1) == 1
                answer = session.post(f"http://{host}:{port}{infer}", json=body, timeout=30)
                assert answer.status_code == 200, answer.text
                if index % 4 == 0:
                    unknown = session.post(f"http://{host}:{port}/v2/models/not-{spec.model_name}/infer",
                                           json=body, timeout=30)
                    assert unknown.status_code == 404, unknown.text
        time.sleep(1.0)  # the pump writes what the server wrote
        text = log.read_text(errors="replace")[before:]
        growth = log.stat().st_size - before
    assert growth < LOG_GROWTH, f"the log grew {growth:,} bytes:\n{text[-3000:]}"
    assert "Traceback" not in text and "uvicorn.access" not in text and '" 200' not in text, text[-3000:]
    assert "client went away" in text and "not-" in text  # each kind said once, then counted
    print(f"log growth for {CLIENTS} dropped bodies, {CLIENTS} predictions, {CLIENTS // 4} unknown models: "
          f"{growth:,} bytes")
