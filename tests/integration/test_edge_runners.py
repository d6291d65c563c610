"""The edge runners as a user calls them: the CLI on a picture or an .npz, in their environments.

Every row run by an edge runner (`make="runner"` in core/registry.py) is checked here, so a new runtime is
covered the day its row is added. A row that needs the device environment (`.venv-edge`: the runtime alone,
no TensorFlow, no PyTorch) runs there in a subprocess and must not import TensorFlow; one that needs
`.venv-tflite` runs on the legacy tflite-runtime too. Bad input, unrecorded and modified models are refused
with a message naming the problem.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import environments, manifest, paths, registry
from edge import common
from tests.conftest import runner_rows, target_param
from training import data
from training.preprocess import picture_to_input

pytestmark = pytest.mark.concerns("edge")

EDGE_PYTHON = environments.python("edge")
TFLITE_RUNTIME_PYTHON = environments.python("tflite-runtime")
RUNNERS = runner_rows()  # every row an edge runner runs
DEVICE = runner_rows("edge")  # ... and those that also run in the device environment
LEGACY = runner_rows("tflite-runtime")  # ... and on the legacy tflite-runtime


def run_python(python: Path, args: list[str], root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIGITS_ARTIFACTS": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([str(python), *args], cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def labels_printed(stdout: str) -> list[str]:
    """The label of each `[i] label X  top-3 ...` line."""
    return [line.split()[2] for line in stdout.splitlines() if line.startswith("[")]


@pytest.fixture(scope="module")
def test_split(edge_artifacts):
    return data.load_split(paths.split_path(edge_artifacts))["test"]


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory, test_split, spec) -> Path:
    """A 64x64 PNG of a test image, dark ink on white paper, as a scanned drawing would be."""
    from PIL import Image

    grey = (255 - (test_split.x[0] - spec.value_min) * 255 / (spec.value_max - spec.value_min)).astype(np.uint8)
    path = tmp_path_factory.mktemp("images") / "digit.png"
    Image.fromarray(grey).resize((64, 64), Image.NEAREST).save(path)
    return path


@pytest.fixture(scope="module")
def images_npz(tmp_path_factory, test_split) -> Path:
    path = tmp_path_factory.mktemp("images") / "images.npz"
    np.savez(path, x=test_split.x[:20])
    return path


@pytest.fixture(scope="module")
def expected(edge_artifacts, digit_png, test_split, spec) -> dict[str, tuple]:
    """What the source frameworks answer, by framework: probabilities on the picture, labels on the .npz images."""
    reduced = picture_to_input(digit_png.read_bytes(), spec)[None]
    out = {}
    for framework, name in registry.REFERENCES.items():
        predictor = registry.load(name, edge_artifacts)
        out[framework] = (predictor.predict(reduced)[0],
                          [spec.labels[label] for label in predictor.predict(test_split.x[:20]).argmax(axis=1)])
    return out


def reference_label(name: str, expected: dict, spec) -> str:
    return spec.labels[int(np.argmax(expected[registry.TARGETS[name].framework][0]))]


def runner(name: str):
    """The runner module (with its CLI `main`) of row `name`."""
    return importlib.import_module(registry.TARGETS[name].command)


def model_path(name: str, root: Path) -> str:
    return str(registry.artifact_path(registry.TARGETS[name].artifact, root))


def test_every_runner_row_has_a_command_line():
    assert RUNNERS and all(callable(runner(name).main) for name in RUNNERS)


@pytest.mark.skipif(not EDGE_PYTHON.exists(), reason=".venv-edge missing: run `make setup`")
@pytest.mark.parametrize("name", [target_param(name) for name in DEVICE])
def test_runner_in_the_device_environment_never_imports_a_framework(name, edge_artifacts, digit_png, expected,
                                                                      spec):
    script = (
        "import sys, json\n"
        f"from {registry.TARGETS[name].command} import main\n"
        f"main(['--model', {model_path(name, edge_artifacts)!r}, {str(digit_png)!r}])\n"
        "heavy = sorted(m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules)\n"
        "print('IMPORTED', json.dumps(heavy))\n"
    )
    result = run_python(EDGE_PYTHON, ["-c", script], edge_artifacts)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED []" in result.stdout
    assert labels_printed(result.stdout) == [reference_label(name, expected, spec)]


@pytest.mark.skipif(not EDGE_PYTHON.exists(), reason=".venv-edge missing: run `make setup`")
def test_edge_env_has_no_tensorflow_or_torch_to_import(edge_artifacts):
    """The property above holds because the device environment cannot import them at all."""
    result = run_python(EDGE_PYTHON, ["-c", "import importlib.util as u; print([u.find_spec(m) is None for m in "
                                      "('tensorflow', 'torch')])"], edge_artifacts)
    assert result.stdout.strip() == "[True, True]"


@pytest.mark.skipif(not EDGE_PYTHON.exists(), reason=".venv-edge missing: run `make setup`")
@pytest.mark.parametrize("name", [target_param(name) for name in DEVICE if registry.TARGETS[name].precision == "fp32"])
def test_cli_on_npz_in_the_device_environment(name, edge_artifacts, images_npz, expected):
    result = run_python(EDGE_PYTHON, ["-m", registry.TARGETS[name].command, "--model", model_path(name, edge_artifacts),
                                      str(images_npz)], edge_artifacts)
    assert result.returncode == 0, result.stderr
    assert labels_printed(result.stdout) == expected[registry.TARGETS[name].framework][1]
    assert "top-3" in result.stdout and "20 image(s)" in result.stdout


@pytest.mark.skipif(not TFLITE_RUNTIME_PYTHON.exists(), reason=".venv-tflite is not built: `make setup`")
@pytest.mark.parametrize("name", [target_param(name) for name in LEGACY])
def test_the_legacy_tflite_runtime_gives_the_same_answers(name, edge_artifacts, images_npz):
    """tflite-runtime 2.14 (numpy<2), the one runtime of its environment: the runner takes it by itself."""
    args = ["-m", registry.TARGETS[name].command, "--model", model_path(name, edge_artifacts), str(images_npz)]
    legacy = run_python(TFLITE_RUNTIME_PYTHON, args, edge_artifacts)
    assert legacy.returncode == 0, legacy.stderr
    assert f"{registry.TARGETS[name].artifact.replace('_', '-')}-tflite-runtime" in legacy.stdout
    litert = run_python(EDGE_PYTHON, args, edge_artifacts)
    assert labels_printed(legacy.stdout) == labels_printed(litert.stdout) and len(labels_printed(legacy.stdout)) == 20


@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_every_runner_answers_on_a_picture(name, edge_artifacts, digit_png, expected, capsys, spec):
    probabilities = runner(name).main(["--model", model_path(name, edge_artifacts), str(digit_png)])
    out = capsys.readouterr().out
    reference = expected[registry.TARGETS[name].framework][0]
    assert probabilities.shape == (1, spec.num_classes) and abs(float(probabilities.sum()) - 1) < 1e-2
    tolerance = 1e-4 if registry.TARGETS[name].precision == "fp32" else 0.1
    second, best = np.sort(reference)[-2:]
    if best - second > 2 * tolerance:  # a near tie may fall either way in int8
        assert labels_printed(out) == [reference_label(name, expected, spec)]
    np.testing.assert_allclose(probabilities[0], reference, atol=tolerance)
    assert out.startswith(registry.TARGETS[name].artifact.replace("_", "-"))


# ---- bad input: every runner refuses it with a message naming the problem ----

@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, spec) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected message fragment)."""
    item, low, shown = spec.item_shape, spec.value_min, ", ".join(str(d) for d in spec.item_shape)
    smaller = tuple(d - 1 for d in item)
    folder = tmp_path_factory.mktemp("bad")
    cases = {}

    def npz(name, message, **arrays):
        path = folder / f"{name}.npz"
        np.savez(path, **arrays)
        cases[name] = (path, message)

    npz("wrong_shape", rf"must have shape \[-1, {shown}\] .*got \[3, {', '.join(map(str, smaller))}\]",
        x=np.full((3, *smaller), low, np.float32))
    one_nan = np.full((1, *item), low, np.float32)
    one_nan.flat[5] = np.nan
    npz("nan", "1 NaN or infinite", x=one_nan)
    npz("strings", "must be numeric", x=np.full((1, *item), "a"))
    npz("out_of_range", rf"must lie in \[{spec.value_min:g}, {spec.value_max:g}\]",
        x=np.full((1, *item), spec.value_max + 24, np.float32))
    npz("two_arrays", "expected an array named 'x'", a=np.zeros((1, *item)), b=np.zeros((1, *item)))
    (folder / "text.png").write_text("this is not a picture")
    cases["not_an_image"] = (folder / "text.png", "not a readable PNG/JPEG image")
    (folder / "notes.txt").write_text("hello")
    cases["wrong_suffix"] = (folder / "notes.txt", "INPUT must be a PNG/JPEG or an .npz")
    (folder / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    cases["broken_npz"] = (folder / "broken.npz", "not a readable .npz file")
    cases["missing"] = (folder / "absent.png", "no such file")
    return cases


@pytest.mark.parametrize("case", ["wrong_shape", "nan", "strings", "out_of_range", "two_arrays", "not_an_image",
                                  "wrong_suffix", "broken_npz", "missing"])
@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_cli_refuses_bad_input_with_a_clear_message(name, case, bad_inputs, edge_artifacts):
    path, message = bad_inputs[case]
    with pytest.raises(SystemExit) as stopped:
        runner(name).main(["--model", model_path(name, edge_artifacts), str(path)])
    assert str(stopped.value.code).startswith("error: ")
    assert re.search(message, str(stopped.value.code)), stopped.value.code


def bad_batches(spec) -> list:
    item, shown = spec.item_shape, ", ".join(str(d) for d in spec.item_shape)
    return [
        (np.zeros((2, item[0]), np.float32), rf"must have shape \[-1, {shown}\]"),
        (np.zeros(item, np.float32), rf"must have shape \[-1, {shown}\]"),  # one image without its batch axis
        (np.zeros((0, *item), np.float32), "empty batch"),
        (np.full((1, *item), np.inf, np.float32), "NaN or infinite"),
        (np.zeros((1, *item), complex), "must be numeric"),
        (np.full((1, *item), spec.value_min - 1), rf"must lie in \[{spec.value_min:g}, {spec.value_max:g}\]"),
    ]


@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_predictor_refuses_a_batch_outside_the_contract(name, edge_artifacts, spec):
    predictor = registry.load(name, edge_artifacts)
    for batch, message in bad_batches(spec):
        with pytest.raises(common.InputError, match=message):
            predictor.predict(batch)
    one = np.full((1, *spec.item_shape), spec.value_min, np.float64)  # any real dtype: still serves
    assert predictor.predict(one).shape == (1, spec.num_classes)


# ---- the model file itself: recorded and unmodified, or refused ----

def copy_with_manifest(artifact_id: str, source: Path, target: Path) -> Path:
    """A copy of one artifact (a file, or a folder such as an OpenVINO IR) and its manifest entry in a fresh
    artifacts folder."""
    entry = manifest.load(source)[artifact_id]
    (target / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
    copy = shutil.copytree if (source / entry["path"]).is_dir() else shutil.copy
    copy(source / entry["path"], target / entry["path"])
    (target / "manifest.json").write_text(json.dumps({artifact_id: entry}))
    shutil.copy(source / "spec.json", target / "spec.json")  # a device copy carries the contract it was built for
    return target / entry["path"]


def largest_file(path: Path) -> Path:
    """The file itself, or a folder's largest file (a model's weights)."""
    return max(path.rglob("*"), key=lambda file: file.stat().st_size if file.is_file() else -1) \
        if path.is_dir() else path


@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_modified_model_is_refused(name, edge_artifacts, tmp_path, monkeypatch, spec):
    monkeypatch.setenv("DIGITS_ARTIFACTS", str(tmp_path))
    copy = copy_with_manifest(registry.TARGETS[name].artifact, edge_artifacts, tmp_path)
    one = np.full((1, *spec.item_shape), spec.value_min, np.float32)
    load = registry.TARGETS[name].factory
    assert load(tmp_path, None).predict(one).shape == (1, spec.num_classes)  # the intact copy loads
    weights = largest_file(copy)
    content = bytearray(weights.read_bytes())
    content[len(content) // 2] ^= 0xFF
    weights.write_bytes(bytes(content))
    with pytest.raises(manifest.ManifestError, match="does not match the manifest"):
        load(tmp_path, None)


@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_model_missing_from_every_manifest_is_refused(name, edge_artifacts, tmp_path, digit_png, monkeypatch):
    monkeypatch.setenv("DIGITS_ARTIFACTS", str(tmp_path))
    source = Path(model_path(name, edge_artifacts))
    stray = tmp_path / "elsewhere" / source.name
    stray.parent.mkdir()
    (shutil.copytree if source.is_dir() else shutil.copy)(source, stray)
    with pytest.raises(SystemExit, match="not recorded in any artifacts manifest"):
        runner(name).main(["--model", str(stray), str(digit_png)])
    with pytest.raises(SystemExit, match="no such model file"):
        runner(name).main(["--model", str(tmp_path / ("absent" + source.suffix)), str(digit_png)])


@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_runner_finds_the_manifest_next_to_a_copied_artifacts_folder(name, edge_artifacts, tmp_path, digit_png,
                                                                      monkeypatch, capsys):
    """On a device, the artifacts folder is copied anywhere: the runner finds its manifest by walking up."""
    monkeypatch.setenv("DIGITS_ARTIFACTS", str(tmp_path / "unrelated"))
    copy = copy_with_manifest(registry.TARGETS[name].artifact, edge_artifacts, tmp_path / "device")
    runner(name).main(["--model", str(copy), str(digit_png)])
    assert labels_printed(capsys.readouterr().out)


def test_unknown_runtime_is_refused_by_the_cli(edge_artifacts, digit_png):
    result = subprocess.run([sys.executable, "-m", "edge.tflite.run", "--runtime", "tensorflow", "--model",
                             model_path("tflite-fp32", edge_artifacts), str(digit_png)],
                            cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice: 'tensorflow'" in result.stderr


# ---- the runtime's own call, apart from the runner (what `make bench-edge` times) ----

@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_prepared_runtime_call_answers_what_predict_answers(name, edge_artifacts, test_split, spec):
    predictor = registry.load(name, edge_artifacts)
    for size in (1, 32, 7, 1):  # a new size resizes (TFLite); the same size again reuses the allocation
        batch = test_split.x[:size]
        call = predictor.prepare(batch)
        first = call.answer(call.run())
        again = call.answer(call.run())  # the input stays in place: run() alone repeats the same call
        assert first.shape == (size, spec.num_classes) and first.dtype == np.float32
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(first, predictor.predict(batch))


@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_prepare_checks_the_batch_as_predict_does(name, edge_artifacts, spec):
    predictor = registry.load(name, edge_artifacts)
    for batch, message in bad_batches(spec):
        with pytest.raises(common.InputError, match=message):
            predictor.prepare(batch)


def test_executorch_prepare_takes_one_call_of_the_program(edge_artifacts, spec):
    predictor = registry.load("executorch-xnnpack-fp32", edge_artifacts)
    too_many = np.full((predictor.max_batch + 1, *spec.item_shape), spec.value_min, np.float32)
    with pytest.raises(ValueError, match=f"at most {predictor.max_batch} images"):
        predictor.prepare(too_many)
    assert predictor.predict(too_many).shape == (len(too_many), spec.num_classes)  # predict runs it in chunks


def test_bench_writes_runner_and_runtime_figures_the_report_reads(edge_artifacts, monkeypatch, tmp_path):
    """A few calls only: the JSON's shape, never its timings."""
    from benchmarks import edge_runtimes
    from benchmarks.report import layout

    monkeypatch.setenv("DIGITS_ARTIFACTS", str(edge_artifacts))
    # TensorFlow's thread pools are fixed once it has run in this process (the references above): the
    # command line sets them first, a test process cannot.
    monkeypatch.setattr(edge_runtimes, "limit_threads", lambda: None)
    chosen = ["torch-eager", "onnx-fp32", "tflite-fp32", "tflite-int8"]
    written = edge_runtimes.main(["--iterations", "3", "--warmup", "1", "--targets", *chosen])
    on_disk = json.loads((edge_artifacts / "bench" / "edge.json").read_text())
    assert on_disk == json.loads(json.dumps(written))
    assert on_disk["command"] == f"python -m benchmarks edge --iterations 3 --warmup 1 --targets {' '.join(chosen)}"
    rows = {row["name"]: row for row in on_disk["results"]}
    assert list(rows) == chosen and on_disk["batches"] == [1, 32]
    for name, row in rows.items():
        for size in (1, 32):
            figures = row[f"batch_{size}"]
            assert figures["n"] == 3 and figures["p50_us"] > 0 and figures["first_call_us"] > 0
            if name == "torch-eager":  # no runtime call apart from predict
                assert figures["runtime"] is None and figures["runner_over_runtime"] is None
                assert row["measures"] == "runner (runtime == runner)"
            else:
                assert figures["runtime"]["n"] == 3 and figures["runtime"]["p50_us"] > 0
                assert figures["runner_over_runtime"] == round(figures["p50_us"] / figures["runtime"]["p50_us"], 2)
    text = layout.build(edge_artifacts, tmp_path / "REPORT.md")
    section = text.split("## Edge runtimes")[1].split("\n## ")[0]
    assert all(f"| {name} |" in section for name in chosen[1:]) and "TFLite int8 against fp32" in section


def test_tflite_runner_refuses_a_file_with_int8_input(edge_artifacts, monkeypatch):
    """Both files take float32 (the int8 one quantizes inside); one exported the older way, with int8
    input, is refused with what to do rather than fed raw floats."""
    from edge.tflite import run as tflite_run

    real = tflite_run.load_interpreter_class("litert")

    class Int8Input(real):
        def get_input_details(self):
            return [{**detail, "dtype": np.int8} for detail in super().get_input_details()]

    monkeypatch.setattr(tflite_run, "load_interpreter_class", lambda runtime: Int8Input)
    with pytest.raises(ValueError, match=r"input is int8, not float32: .*rebuild it \(`make export-edge`\)"):
        registry.load("tflite-int8", edge_artifacts)
