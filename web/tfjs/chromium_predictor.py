"""The browser target in a real browser, as a Predictor: the demo page's model in headless Chromium.

    from web.tfjs.chromium_predictor import ChromiumPredictor
    predictor = ChromiumPredictor(root)                  # serves <root>/web itself while predicting
    predictor = ChromiumPredictor(root, url=page_url)    # or uses a server already running
    probabilities = predictor.predict(batch)             # (N, 8, 8) float32 0..16 -> (N, 10)
    predictor.backend                                    # the tfjs backend the page chose, e.g. "wasm"

Each call runs `node web/tfjs/tools/predict_chromium.js <url>`: one fresh Debian Chromium
(/usr/bin/chromium through playwright-core, never a downloaded browser) opens the page, which
loads its graph model exactly as for a visitor, and predicts the whole batch through its own
`window.digits.predictValues` (page/model.js). About two seconds per call, mostly the browser's
start; the page's own speed is measured by `make bench-web`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from training import manifest, paths
from training.spec import IMAGE_SIZE, NUM_CLASSES, VALUE_MAX, VALUE_MIN

TFJS_DIR = Path(__file__).resolve().parent
TIMEOUT = 120  # seconds for one browser run, start to answer


class ChromiumPredictor:
    name = "tfjs-chromium"
    framework = "tensorflow"
    precision = "fp32"

    def __init__(self, root: Path | None = None, url: str | None = None) -> None:
        self.root = (root or paths.artifacts_dir()).resolve()
        manifest.verify("web_demo", self.root)  # refuses a changed or missing page (model included)
        self.url = url
        self.backend = None  # known after the first predict()
        self.node = shutil.which("node")
        if self.node is None:
            raise RuntimeError("node not found: install Node.js 18+ (`make setup-system`)")

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, 8, 8) float32 raw values 0..16 -> (N, 10) float32 probabilities."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 3 or batch.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or len(batch) == 0:
            raise ValueError(f"expected a batch of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}) with N >= 1, got {batch.shape}")
        if not np.all(np.isfinite(batch)) or batch.min() < VALUE_MIN or batch.max() > VALUE_MAX:
            raise ValueError(f"values must be finite and lie in [{VALUE_MIN:g}, {VALUE_MAX:g}]")
        request = json.dumps({"shape": list(batch.shape), "values": batch.ravel().tolist()})
        if self.url is not None:
            answer = self._run(self.url, request)
        else:
            answer = self._run_with_own_server(request)
        self.backend = answer["backend"]
        probabilities = np.asarray(answer["probabilities"], dtype=np.float32)
        return probabilities.reshape(len(batch), NUM_CLASSES)

    def _run_with_own_server(self, request: str) -> dict:
        from web.tfjs import serve  # the demo's own static server, on a free port for this call

        with serve.running(self.root) as url:
            return self._run(url, request)

    def _run(self, url: str, request: str) -> dict:
        done = subprocess.run([self.node, "tools/predict_chromium.js", url], cwd=TFJS_DIR, input=request,
                              capture_output=True, text=True, timeout=TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"tools/predict_chromium.js failed on {url} (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout)
