"""The web folder's build, its server (MIME types, refusal of a changed folder) and its Predictor."""
import json
import re
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest

from core import manifest, registry
from tests.browser.conftest import serve_web
from web.tfjs import export, serve

pytestmark = [pytest.mark.slow, pytest.mark.concerns("browser")]


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
    for name in ("index.html", "app.js", "preprocess.js", "contract.js", "model.js", "vendor/tf.min.js",
                 "vendor/tfjs-backend-wasm-simd.wasm"):
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


def test_the_page_server_and_the_web_image_hold_no_user_data(web_artifacts, tmp_path):
    """The test split once answered 200 at /fixtures/keras_test.json: the vectors live beside the served
    folder, and the web image copies that folder only."""
    from deploy.containers import images

    fixtures = export.fixtures_dir(web_artifacts)
    assert (fixtures / "keras_test.json").is_file() and (fixtures / "uploads.json").is_file()
    assert not fixtures.is_relative_to(export.web_dir(web_artifacts))
    with serve.running(web_artifacts) as url:
        for path in ("fixtures/keras_test.json", "fixtures/uploads.json", "web-fixtures/keras_test.json",
                     "../web-fixtures/keras_test.json", "%2e%2e/web-fixtures/keras_test.json"):
            with pytest.raises(urllib.error.HTTPError, match="404|403|400"):
                urllib.request.urlopen(url + path)
    context = images.stage(images.DOCKERFILES / "web.Dockerfile", web_artifacts, tmp_path / "context")
    assert (context / "artifacts" / "web" / "index.html").is_file()
    assert not [path for path in context.rglob("*") if path.name in {p.name for p in fixtures.iterdir()}]


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
    from core import spec as specs
    from core.predictor import Predictor
    from web.tfjs.predictor import TfjsPredictor

    task = specs.load(web_artifacts)
    predictor = TfjsPredictor(web_artifacts)
    assert isinstance(predictor, Predictor) and predictor.name == "tfjs-wasm"
    with pytest.raises(ValueError, match=re.escape(f"must have shape {[-1, *task.item_shape]}") + r".*got \[3, 64\]"):
        predictor.predict(np.zeros((3, 64), np.float32))
    with pytest.raises(ValueError, match=re.escape(f"lie in {task.value_range()}")):
        predictor.predict(np.full((1, *task.item_shape), task.value_max + 1, np.float32))


def test_chromium_predictor_runs_the_page_on_any_task_shape(colour_web_artifacts):
    """The page's own model.js over a (N, 12, 16, 3) batch gives Keras's answers; both contract checks refuse bad
    ones."""
    import json

    from core import contract
    from core import spec as specs
    from web.tfjs.chromium_predictor import ChromiumPredictor

    task = specs.load(colour_web_artifacts)
    keras = json.loads((export.fixtures_dir(colour_web_artifacts) / "keras_test.json").read_text())
    x = np.asarray(keras["x"], np.float32).reshape(keras["count"], *task.item_shape)[:8]
    expected = np.asarray(keras["probabilities"], np.float32).reshape(keras["count"], task.num_classes)[:8]
    predictor = ChromiumPredictor(colour_web_artifacts)
    probabilities = predictor.predict(x)
    assert probabilities.shape == (8, len(task.labels)) and predictor.backend == "wasm"
    assert np.abs(probabilities - expected).max() <= 1e-4
    assert (probabilities.argmax(1) == expected.argmax(1)).all()
    # Python's check refuses before any browser starts ...
    shape, no_channels = [-1, *task.item_shape], [2, *task.item_shape[:-1]]
    with pytest.raises(contract.ContractError,
                       match=re.escape(f"must have shape {shape}")
                       + re.escape(f" (N images of {task.describe_item()}), got {no_channels}")):
        predictor.predict(np.zeros(no_channels, np.float32))
    # ... and the page's own check (page/contract.js) refuses what reaches it.
    over = task.value_max + 45
    with serve_web(colour_web_artifacts) as url:
        request = json.dumps({"shape": [1, *task.item_shape], "values": [over] * int(np.prod(task.item_shape))})
        with pytest.raises(contract.ContractError, match=re.escape(f"page/contract.js): input: values must lie in "
                                                                   f"{task.value_range()}, got [{over:g}, {over:g}]")):
            predictor._run(url, request)


def test_runtimes_json_lists_every_runtime_and_its_model_copy_matches_the_manifest(web_artifacts):
    """Four rows: TF.js, onnxruntime-web, LiteRT.js on the Keras and on the litert-torch file; each copied
    model file has the manifest's sha256, and every file a runtime may load is in the folder."""
    web = web_artifacts / "web"
    runtimes = {entry["name"]: entry for entry in json.loads((web / "runtimes.json").read_text())["runtimes"]}
    # The page's rows are the registry's rows with a `page`, TF.js first.
    assert list(runtimes) == [target.page.runtime for target in registry.pages()]
    assert list(runtimes)[0] == "tfjs" and set(runtimes) == {"tfjs", "onnxruntime-web", "onnxruntime-web-int8",
                                                             "litert", "litert-torch"}
    assert {name: entry["adapter"] for name, entry in runtimes.items()} == {
        "tfjs": "tfjs", "onnxruntime-web": "onnxruntime-web", "onnxruntime-web-int8": "onnxruntime-web",
        "litert": "litert", "litert-torch": "litert"}
    assert {name for name, entry in runtimes.items() if entry["precision"] == "int8"} == {"onnxruntime-web-int8"}
    assert json.loads((web / "runtimes.json").read_text())["left_out"] == []
    assert {name: entry["framework"] for name, entry in runtimes.items()} == {
        "tfjs": "tensorflow", "onnxruntime-web": "torch", "onnxruntime-web-int8": "torch", "litert": "tensorflow",
        "litert-torch": "torch"}
    assert {name: entry["source"] for name, entry in runtimes.items()} == {
        "tfjs": "tfjs_graph_model", "onnxruntime-web": "onnx_fp32", "onnxruntime-web-int8": "onnx_int8",
        "litert": "tflite_fp32_batch1",
        "litert-torch": "tflite_torch_fp32"}
    entries = manifest.load(web_artifacts)
    assert entries["tflite_torch_fp32"]["framework"] == "torch" and entries["tflite_torch_fp32"]["batch"] == 1
    for name, entry in runtimes.items():
        for path in entry["files"]:
            assert (web / path).is_file(), f"{name}: {path}"
        if name != "tfjs":
            assert entry["model_sha256"] == entries[entry["source"]]["sha256"]
            assert manifest.sha256_of(web / entry["model"]) == entry["model_sha256"], name
    # The same LiteRT.js files for both .tflite rows.
    assert (set(runtimes["litert-torch"]["files"]) - {runtimes["litert-torch"]["model"]}
            == set(runtimes["litert"]["files"]) - {runtimes["litert"]["model"]})


def test_bench_web_with_tiny_counts_writes_what_the_report_reads(web_artifacts, tmp_path):
    """`make bench-web` on two runtimes, one cold and two warm runs: web.json's shape (no timed assertions)."""
    from benchmarks import browser
    from benchmarks.report import figures

    copy = tmp_path / "artifacts"
    shutil.copytree(web_artifacts / "web", copy / "web")
    shutil.copytree(export.fixtures_dir(web_artifacts), export.fixtures_dir(copy))  # what it draws or uploads
    shutil.copy2(web_artifacts / "manifest.json", copy / "manifest.json")
    for name in ("spec.json",):
        shutil.copy2(web_artifacts / name, copy / name)
    report = browser.main(["--configs", "tfjs:wasm", "litert-torch", "nope", "--cold-runs", "1", "--warm-runs", "2",
                         "--artifacts", str(copy)])
    written = json.loads((copy / "bench" / "web.json").read_text())
    assert written == json.loads(json.dumps(report))
    assert written["command"].startswith("python -m benchmarks web") and "cpus" in written["machine"]
    assert list(written["runtimes"]) == ["tfjs-wasm", "litert-torch"]
    for key, row in written["runtimes"].items():
        assert set(row["warm_model"]) == {"n", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"}, key
        assert row["warm_model"]["n"] == 2 and row["cold_start"]["n"] == 1 and row["cold_start"]["p50_ms"] > 0
        weight = row["page_bytes"]
        assert weight["wasm"] > 0 and weight["scripts"] > 0 and weight["model"] > 0
        assert weight["runtime_total"] == weight["scripts"] + weight["wasm"] + weight["model"]
    litert = written["runtimes"]["litert-torch"]
    model = next(entry["model"] for entry in json.loads((copy / "web" / "runtimes.json").read_text())["runtimes"]
                 if entry["name"] == "litert-torch")
    assert litert["framework"] == "torch"
    assert litert["page_bytes"]["files"][model] == (copy / "web" / model).stat().st_size
    assert written["shared_page_bytes"] > 0 and "app.js" in written["shared_page_files"]
    rows = figures.browser_latency({"web": written})
    assert set(rows) == {"chromium-tfjs-wasm", "chromium-litert-torch"}
    assert rows["chromium-litert-torch"][3:] == ("torch", litert["page_bytes"]["runtime_total"])
