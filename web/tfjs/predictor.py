"""The browser target's model as a Predictor: the TF.js graph model run by tfjs (wasm) in Node.

    from web.tfjs.predictor import TfjsPredictor
    probabilities = TfjsPredictor().predict(batch)   # (N, *item_shape) float32 -> (N, K)

Each call runs `node web/tfjs/tools/predict.js` once (about half a second of start-up), the same
JavaScript (page/model.js) and runtime the page uses, minus the browser. Parity checks use it;
the page's own speed is measured by `make bench-web`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from core import manifest, paths
from core import spec as specs
from core.contract import ContractError, check_batch

TFJS_DIR = Path(__file__).resolve().parent


class TfjsPredictor:
    name = "tfjs-wasm"
    framework = "tensorflow"
    precision = "fp32"

    def __init__(self, root: Path | None = None) -> None:
        root = (root or paths.artifacts_dir()).resolve()
        manifest.verify("tfjs_graph_model", root)  # refuses a changed or missing model
        self.web_dir = root / "web"
        self.spec = specs.load(root)
        self.node = shutil.which("node")
        if self.node is None:
            raise RuntimeError("node not found: install Node.js 18+ (`make setup`)")

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, *item_shape) float32 raw values -> (N, K) float32 probabilities."""
        batch = check_batch(batch, self.spec, self.name, max_batch=None)  # ContractError naming the problem
        request = json.dumps({"shape": list(batch.shape), "values": batch.ravel().tolist()})
        done = subprocess.run([self.node, "tools/predict.js", str(self.web_dir)], cwd=TFJS_DIR, input=request,
                              capture_output=True, text=True)
        if done.returncode == 2:  # the page's own contract check (page/contract.js) refused the batch
            raise ContractError(done.stderr.strip())
        if done.returncode != 0:
            raise RuntimeError(f"tools/predict.js failed (exit {done.returncode}): {done.stderr.strip()}")
        probabilities = np.asarray(json.loads(done.stdout)["probabilities"], dtype=np.float32)
        return probabilities.reshape(len(batch), self.spec.num_classes)
