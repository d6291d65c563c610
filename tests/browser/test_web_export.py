"""The web folder's build, its server (MIME types, refusal of a changed folder) and its Predictor."""
import json
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest

from training import manifest
from web.tfjs import serve

pytestmark = pytest.mark.slow


def test_export_records_the_model_and_the_page(web_artifacts):
    web = web_artifacts / "web"
    assert manifest.verify("tfjs_graph_model", web_artifacts) == web / "model"
    assert manifest.verify("web_demo", web_artifacts) == web
    model = json.loads((web / "model" / "model.json").read_text())
    assert model["format"] == "graph-model"
    # The signature keeps the spec's tensor names, which the page uses.
    assert list(model["signature"]["inputs"]) == ["image"]
    assert list(model["signature"]["outputs"]) == ["probabilities"]
    assert json.loads((web / "spec.json").read_text()) == json.loads((web_artifacts / "spec.json").read_text())
    for name in ("index.html", "app.js", "reduce.js", "model.js", "vendor/tf.min.js", "vendor/tfjs-backend-wasm-simd.wasm"):
        assert (web / name).is_file(), name
    # No CDN: the page loads nothing by absolute URL.
    assert "http" not in (web / "index.html").read_text().replace("http-equiv", "")


def test_server_sends_wasm_with_its_mime_type(web_artifacts):
    with serve.running(web_artifacts) as url:
        with urllib.request.urlopen(url + "vendor/tfjs-backend-wasm.wasm") as response:
            assert response.headers["Content-Type"] == "application/wasm"
            assert response.read(4) == b"\0asm"
        with urllib.request.urlopen(url) as response:
            assert b'id="pad"' in response.read()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url + "missing.js")


def test_server_refuses_a_changed_folder(web_artifacts, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(web_artifacts / "web", copy / "web")
    shutil.copy2(web_artifacts / "manifest.json", copy / "manifest.json")
    with serve.running(copy):  # an intact copy is served
        pass
    (copy / "web" / "app.js").write_text("alert('changed')")
    with pytest.raises(manifest.ManifestError, match="web_demo.*does not match the manifest"):
        serve.running(copy)


def test_tfjs_predictor_refuses_bad_batches(web_artifacts):
    """Its answers are checked with every other target's in tests/parity/test_every_target.py."""
    from training.predictor import Predictor
    from web.tfjs.predictor import TfjsPredictor

    predictor = TfjsPredictor(web_artifacts)
    assert isinstance(predictor, Predictor) and predictor.name == "tfjs-wasm"
    with pytest.raises(ValueError, match=r"shape \(N, 8, 8\).*got \(3, 64\)"):
        predictor.predict(np.zeros((3, 64), np.float32))
    with pytest.raises(ValueError, match=r"lie in \[0, 16\]"):
        predictor.predict(np.full((1, 8, 8), 17, np.float32))
