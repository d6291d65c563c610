"""The browser target in a real browser, as a Predictor: the demo page's model in headless Chromium.

    from web.tfjs.chromium_predictor import ChromiumPredictor
    predictor = ChromiumPredictor(root)                  # serves <root>/web itself while predicting
    predictor = ChromiumPredictor(root, url=page_url)    # or uses a server already running
    probabilities = predictor.predict(batch)             # (N, *item_shape) raw values -> (N, K)
    predictor.backend                                    # the tfjs backend the page chose, e.g. "wasm"
    ChromiumPredictor(root, runtime="onnxruntime-web")   # the page's other runtimes: onnxruntime-web, litert

Each call runs `node web/tfjs/tools/predict_chromium.js <url>`: one fresh Debian Chromium
(/usr/bin/chromium through playwright-core, never a downloaded browser) opens the page, which
loads its graph model exactly as for a visitor, and predicts the whole batch through its own
`window.digits.predictBatch`: the page's input check (page/contract.js, the twin of
core/contract.py) and then its model (page/model.js). The batch is checked here first with
core.contract, so a bad one is refused without starting a browser. The shape, range and labels
are the artifacts folder's spec.json. About two seconds per call, mostly the browser's start; the
page's own speed is measured by `make bench-web`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from core import contract, manifest, paths
from core import spec as core_spec

TFJS_DIR = Path(__file__).resolve().parent
TIMEOUT = 120  # seconds for one browser run, start to answer


class ChromiumPredictor:
    name = "tfjs-chromium"
    framework = "tensorflow"
    precision = "fp32"

    def __init__(self, root: Path | None = None, url: str | None = None, runtime: str = "tfjs") -> None:
        self.root = (root or paths.artifacts_dir()).resolve()
        web = manifest.verify("web_demo", self.root)  # refuses a changed or missing page (models included)
        self.spec = core_spec.load(self.root)
        listed = {entry["name"]: entry for entry in json.loads((web / "runtimes.json").read_text())["runtimes"]}
        if runtime not in listed:
            raise ValueError(f"the page has no runtime {runtime!r}; it runs {', '.join(listed)}")
        self.runtime = runtime
        self.framework = listed[runtime]["framework"]
        self.url = url
        self.backend = None  # known after the first predict()
        self.node = shutil.which("node")
        if self.node is None:
            raise RuntimeError("node not found: install Node.js 18+ (`make setup`)")

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, *item_shape) raw values in the spec's range -> (N, K) float32 probabilities.

        ContractError (a ValueError) names what is wrong with a bad batch; no size limit applies.
        """
        batch = contract.check_batch(batch, self.spec, self.name, max_batch=None)
        request = json.dumps({"shape": list(batch.shape), "values": batch.ravel().tolist()})
        if self.url is not None:
            answer = self._run(self.url, request)
        else:
            answer = self._run_with_own_server(request)
        self.backend = answer["backend"]
        probabilities = np.asarray(answer["probabilities"], dtype=np.float32)
        return probabilities.reshape(len(batch), self.spec.num_classes)

    def _run_with_own_server(self, request: str) -> dict:
        from web.tfjs import serve  # the demo's own static server, on a free port for this call

        with serve.running(self.root) as url:
            return self._run(url, request)

    def _run(self, url: str, request: str) -> dict:
        done = subprocess.run([self.node, "tools/predict_chromium.js", url, self.runtime], cwd=TFJS_DIR, input=request,
                              capture_output=True, text=True, timeout=TIMEOUT)
        if done.returncode == 2:  # the page's own contract check refused the batch
            raise contract.ContractError(f"{self.name} (page/contract.js): {done.stderr.strip()}")
        if done.returncode != 0:
            raise RuntimeError(f"tools/predict_chromium.js failed on {url} (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout)
