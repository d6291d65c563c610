"""Pictures on every runner: any PNG/JPEG, grey or colour, of any size, gives the reference's label.

Two small tasks unlike the digits, exported to every edge target: a COLOUR one, (12, 16, 3) RGB, the session's
second task (tests/conftest.py `second_task`, which tests/parity/test_second_task.py holds to parity), and a
GREY one, (10, 14), trained here (2 epochs, tiny synthetic data, in its own artifacts folder). Every target
with a command line (the registry's `command`) is called the way a user calls it, `main(["--model", F,
picture])` in process and `python -m <command>` in every environment its row needs (each command once in the
main one), on pictures that are grey, RGB, RGBA, palette and grey with alpha, as PNG and JPEG, at the spec's
size and at sizes far from it (3x3, 1000x10, 37x53). The label it prints must be the one the reference eager
model gives for `picture_to_input` of the same bytes, the served path's reduction; TorchServe's handler is
held to the same pictures in process. A strided batch (a Fortran-order .npz) must give the same answers as a
contiguous one.
"""
from __future__ import annotations

import importlib
import io
from pathlib import Path

import numpy as np
import pytest

from core import environments, registry
from core import spec as specs
from tests.conftest import SECOND_TASK_DATA, built, edge_steps, target_param
from tests.integration.test_edge_runners import labels_printed, run_python
from training.preprocess import picture_to_input

pytestmark = [pytest.mark.slow, pytest.mark.concerns("edge")]

EPOCHS = 2
COMMAND_TARGETS = [name for name, target in registry.TARGETS.items() if target.command]  # every runner's CLI
# How far a target's probabilities may lie from its reference's; a label is compared only where the
# reference's two best are further apart than twice this (a near tie may fall either way in int8).
TOLERANCE = {"fp32": 1e-4, "int8": 0.1}

# name -> (Pillow mode, format, (width, height) or None for the spec's own size)
PICTURES = {
    "rgb-png-spec-size": ("RGB", "PNG", None),
    "grey-png-spec-size": ("L", "PNG", None),
    "palette-png-spec-size": ("P", "PNG", None),
    "rgba-png-37x53": ("RGBA", "PNG", (37, 53)),
    "grey-alpha-png-1000x10": ("LA", "PNG", (1000, 10)),
    "palette-png-3x3": ("P", "PNG", (3, 3)),
    "grey-png-53x37": ("L", "PNG", (53, 37)),
    "rgb-jpeg-1000x10": ("RGB", "JPEG", (1000, 10)),
    "grey-jpeg-37x53": ("L", "JPEG", (37, 53)),
    "rgb-jpeg-3x3": ("RGB", "JPEG", (3, 3)),
    "rgb-jpeg-spec-size": ("RGB", "JPEG", None),
}


def _three_classes(height: int, width: int, seed: int, grey: bool) -> dict:
    """training/example_data's bars (as tests/parity/test_second_task.py makes its task), cut to 3 classes."""
    from training import example_data

    made = example_data.make(count=300, height=height, width=width, seed=seed)
    keep = made["y"] < 3
    x = made["x"][keep]
    if grey:  # (N, H, W): the spec's item shape has no channel axis
        x = x.mean(axis=-1).round().astype(np.uint8)
    return {"x": x, "y": made["y"][keep], "labels": made["labels"][:3]}


GREY = dict(height=10, width=14, seed=2, grey=True)


@pytest.fixture(scope="module", params=["colour", "grey"])
def task(request, tmp_path_factory):
    """(artifacts folder, the task's images): a task exported to every edge target."""
    if request.param == "colour":  # the session's colour task, trained once for every test that needs one
        second_task = request.getfixturevalue("second_task")
        return built(second_task, *edge_steps()), np.load(second_task.parent / SECOND_TASK_DATA)["x"]
    folder = tmp_path_factory.mktemp(f"pictures-{request.param}")
    arrays = _three_classes(**GREY)
    np.savez(folder / "data.npz", **arrays, name=np.array(f"{request.param}s"))
    root = built(folder / "artifacts", *edge_steps(),
                 args=["--epochs", str(EPOCHS), "--data", str(folder / "data.npz"), "--seed", "0"])
    return root, arrays["x"]


def _picture(image: np.ndarray, mode: str, fmt: str, size) -> bytes:
    """One image of the task (uint8 0..255, grey or RGB) as a picture of another mode, format and size."""
    from PIL import Image

    picture = Image.fromarray(image)
    if image.ndim == 2 and mode in ("RGB", "RGBA", "P"):  # a colour picture of a grey task: tinted
        picture = Image.merge("RGB", [picture.point(lambda v, k=k: min(255, int(v * k))) for k in (1.2, 1.0, 0.7)])
    picture = picture.resize(size or picture.size, Image.BILINEAR).convert("RGBA" if mode in ("RGBA", "LA") else "RGB")
    if mode in ("RGBA", "LA"):  # a varying alpha: composited onto white by the reduction
        alpha = np.linspace(80, 255, picture.width * picture.height).reshape(picture.height, picture.width)
        picture.putalpha(Image.fromarray(alpha.astype(np.uint8)))
    picture = picture.convert(mode) if mode != "P" else picture.convert("P", palette=Image.ADAPTIVE, colors=64)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pictures(task, tmp_path_factory) -> dict[str, Path]:
    """name -> a picture file made from one of the task's images (a different one each)."""
    _, images = task
    folder = tmp_path_factory.mktemp("pictures")
    out = {}
    for number, (name, (mode, fmt, size)) in enumerate(PICTURES.items()):
        path = folder / f"{name}.{fmt.lower()}"
        path.write_bytes(_picture(images[number * 7 % len(images)], mode, fmt, size))
        out[name] = path
    return out


@pytest.fixture(scope="module")
def references(task, pictures) -> dict[str, dict[str, np.ndarray]]:
    """framework -> picture name -> the reference's probabilities for picture_to_input of that picture."""
    root, _ = task
    spec = specs.load(root)
    batch = np.stack([picture_to_input(path.read_bytes(), spec) for path in pictures.values()])
    out = {}
    for framework, name in registry.REFERENCES.items():
        probabilities = registry.load(name, root).predict(batch)
        out[framework] = dict(zip(pictures, probabilities, strict=False))
    return out


def _disagreements(answers: dict, expected: dict, labels: list[str], tolerance: float) -> list[str]:
    """Where a target's (printed label, probabilities or None) differ from the reference's, one line each."""
    problems = []
    for name, (label, probabilities) in answers.items():
        reference = expected[name]
        second, best = np.sort(reference)[-2:]
        want = labels[int(np.argmax(reference))]
        if (best - second > 2 * tolerance and label != want) or (
                probabilities is not None and not np.allclose(probabilities, reference, atol=tolerance)):
            problems.append(f"{name}: printed {label} {np.round(probabilities, 4)}, reference {want} "
                            f"{np.round(reference, 4)}")
    return problems


@pytest.mark.parametrize("target", [target_param(name) for name in COMMAND_TARGETS])
def test_command_prints_the_reference_label_for_every_picture(target, task, pictures, references, capsys):
    root, _ = task
    spec = specs.load(root)
    command = importlib.import_module(registry.TARGETS[target].command)
    model = str(registry.artifact_path(registry.TARGETS[target].artifact, root))
    answers, failed = {}, {}
    for name, path in pictures.items():
        try:
            probabilities = command.main(["--model", model, str(path)])
        except SystemExit as stopped:  # the command's own error message
            failed[name] = str(stopped.code)
            continue
        (label,) = labels_printed(capsys.readouterr().out)
        answers[name] = (label, probabilities[0])
    assert not failed, failed
    expected = references[registry.TARGETS[target].framework]
    problems = _disagreements(answers, expected, spec.labels, TOLERANCE[registry.TARGETS[target].precision])
    assert not problems, "\n".join(problems)


def _subprocess_cases() -> list:
    """(target, environment, picture): each command once in the main environment, as `python -m` runs it, and
    every row in each other environment its row needs (the device's, the legacy tflite-runtime's)."""
    cases, seen = [], set()
    for name in COMMAND_TARGETS:
        target = registry.TARGETS[name]
        where = [need for need in target.needs if need in environments.ENVIRONMENTS]
        if target.command not in seen:
            seen.add(target.command)
            where.insert(0, target.env)
        cases += [(name, env, list(PICTURES)[(3 * len(cases) + 1) % len(PICTURES)]) for env in where]
    return cases


@pytest.mark.parametrize("target, env, picture", [
    target_param(name, env, picture, id=f"{name}-{env}") for name, env, picture in _subprocess_cases()])
def test_command_in_its_own_environment(target, env, picture, task, pictures, references):
    root, _ = task
    spec = specs.load(root)
    model = str(registry.artifact_path(registry.TARGETS[target].artifact, root))
    python = environments.python(env)
    if not python.exists():
        pytest.fail(f"{python} is not built: `make setup` (the row of {target} needs it)")
    result = run_python(python, ["-m", registry.TARGETS[target].command, "--model", model, str(pictures[picture])],
                        root)
    assert result.returncode == 0, result.stderr[-2000:]
    (label,) = labels_printed(result.stdout)
    problems = _disagreements({picture: (label, None)}, references[registry.TARGETS[target].framework],
                              spec.labels, TOLERANCE[registry.TARGETS[target].precision])
    assert not problems, problems


@pytest.mark.parametrize("target", [target_param(name) for name in COMMAND_TARGETS])
def test_a_strided_batch_answers_like_a_contiguous_one(target, task, tmp_path, capsys):
    """A Fortran-order .npz (np.save keeps the order) meets the contract: every runner takes it."""
    root, images = task
    spec = specs.load(root)
    batch = images[:5].astype(np.float32)
    np.savez(tmp_path / "fortran.npz", x=np.asfortranarray(batch))
    command = importlib.import_module(registry.TARGETS[target].command)
    model = str(registry.artifact_path(registry.TARGETS[target].artifact, root))
    strided = command.main(["--model", model, str(tmp_path / "fortran.npz")])
    capsys.readouterr()
    contiguous = registry.load(target, root).predict(np.ascontiguousarray(batch))
    np.testing.assert_allclose(strided, contiguous, atol=1e-6)
    assert strided.shape == (5, spec.num_classes)


class _Context:
    """What DigitsHandler.handle reads of TorchServe's context: the per-request status it sets."""

    def __init__(self):
        self.status = {}

    def set_response_status(self, code, phrase, idx):
        self.status[idx] = (code, phrase)


@pytest.mark.concerns("torchserve")
def test_torchserve_handler_reads_every_picture_like_the_reference(task, pictures, references):
    """The handler's own code over the checkpoint's network (no TorchServe process): one request per
    picture, all in one dynamic batch, as TorchServe hands them over (bytearray bodies)."""
    import torch

    from edge.eager import TorchEagerPredictor
    from serving.torchserve.handler import DigitsHandler

    root, _ = task
    handler = DigitsHandler()
    handler.spec = specs.load(root)
    handler.labels, handler.device = handler.spec.labels, torch.device("cpu")
    handler.model = TorchEagerPredictor(root).model
    context = _Context()
    responses = handler.handle([{"body": bytearray(path.read_bytes())} for path in pictures.values()], context)
    assert not context.status, context.status
    answers = {name: (response["predictions"][0]["label"], np.asarray(response["predictions"][0]["probabilities"]))
               for name, response in zip(pictures, responses, strict=False)}
    problems = _disagreements(answers, references["torch"], handler.labels, TOLERANCE["fp32"])
    assert not problems, "\n".join(problems)
