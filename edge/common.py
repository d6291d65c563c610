"""What every edge runner shares: the verified artifact, checked input, and the command line.

numpy-only at import (no TensorFlow, no PyTorch), so the TFLite runner can use it on a device.

Every runner has the same command line, built by `main()` here:

    python -m edge.<target>.run --model PATH INPUT

INPUT is a PNG/JPEG picture (made into one input the spec's way, `training.preprocess`) or an
`.npz` holding images (N, *item_shape) in the spec's value range under `x` (or as its only array).
Each image's label and top-3 probabilities are printed; a bad input stops with a message naming
the problem (a GIF: "unsupported picture format GIF: send PNG or JPEG"). A picture whose content is
not what its name says, or an .npz far off the spec's range in distribution (0..1 values for a
0..16 model), is still answered, with a warning on stderr. Shapes, range and labels come from the
spec of the model's artifacts folder.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import manifest, paths
from core import spec as specs
from core.contract import ContractError, check_batch, range_warning
from core.predictor import Predictor
from core.spec import Spec
from training.preprocess import ImageError, misnamed, picture_to_input

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TOP_K = 3
# Train images fed to every int8 calibration (TFLite, ExecuTorch, ONNX); more changes nothing measurable.
DEFAULT_CALIBRATION = 500


InputError = ContractError  # an input that does not meet the contract; the message names the problem


def find_artifact(model: Path, root: Path | None = None) -> tuple[str, Path]:
    """The manifest id and artifacts folder of a model file, looked up by its path.

    The folder is `root`, else the artifacts folder in force, else the nearest parent of the model
    holding a manifest.json: a device copy of the artifacts folder works without configuration.
    """
    model = Path(model).resolve()
    if not model.exists():
        raise FileNotFoundError(f"{model}: no such model file")
    candidates = [root] if root else [paths.artifacts_dir(), *model.parents]
    for candidate in candidates:
        candidate = Path(candidate).resolve()
        for artifact_id, entry in manifest.load(candidate).items():
            if (candidate / entry["path"]).resolve() == model:
                return artifact_id, candidate
    raise manifest.ManifestError(
        f"{model} is not recorded in any artifacts manifest: refusing to load an unverified model "
        "(build it with `make export`)"
    )


def verified_entry(model: Path, root: Path | None = None) -> tuple[Path, dict, Spec]:
    """The model's path after checking its sha256 against the manifest, its manifest entry, and the
    spec of its artifacts folder (the contract its inputs are checked against)."""
    artifact_id, root = find_artifact(model, root)
    path = manifest.verify(artifact_id, root)
    return path, {"id": artifact_id, **manifest.load(root)[artifact_id]}, specs.load(root)


def calibration_images(root: Path, size: int = DEFAULT_CALIBRATION) -> np.ndarray:
    """The int8 exporters' calibration data: a fixed, seeded sample of the train split (the same int8
    model on every run), (n, *item_shape) float32 raw values in split order."""
    from training import data

    train = data.load_split(paths.split_path(root))["train"]
    pick = np.random.default_rng(0).permutation(len(train))[:size]
    return train.x[np.sort(pick)]


def calibrated_main(doc: str, export: Callable, argv=None):
    """The command line of an exporter that calibrates int8 on train images: `--calibration N`, then
    `export(calibration_size=N)` into the artifacts folder in force."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=int, default=DEFAULT_CALIBRATION,
                        help=f"train images used to calibrate int8 (default: {DEFAULT_CALIBRATION})")
    args = parser.parse_args(argv)
    if args.calibration < 1:
        parser.error("--calibration must be at least 1")
    return export(calibration_size=args.calibration)


def predictor_name(entry: dict) -> str:
    """A target's name from its manifest id: `tflite_int8` -> `tflite-int8`."""
    return entry["id"].replace("_", "-")


@dataclass(frozen=True)
class RuntimeCall:
    """One batch already in place in a runner's runtime, to time the runtime's own call alone.

    A runner's `prepare(batch)` does everything `predict(batch)` does before the runtime runs (the
    contract check, conversions, copying the input in, resizing); `run()` is then the runtime's
    call and nothing else (TFLite `invoke`, ONNX Runtime `session.run`, ExecuTorch `execute`), and
    `answer(run())` is what `predict(batch)` returns. Valid until the runner's next predict/prepare.
    """

    run: Callable[[], object]  # the runtime's own call; returns what the runtime returns
    answer: Callable[[object], np.ndarray]  # that -> (N, K) float32 probabilities, as predict answers


def check_runner_batch(batch, spec: Spec, source: str) -> np.ndarray:
    """The contract check of every runner: any number of images (runners chunk what they must), as a
    C-contiguous float32 array, whatever the strides of what came in."""
    # A strided batch (a resized picture: picture_to_input's area resize ends in axis moves; a
    # Fortran-order .npz; a transposed or sliced array) meets the contract but not every runtime:
    # ExecuTorch refuses it ("Input 0 for method forward should be contiguous or channels-last").
    # Made contiguous here, once, so no runner has to remember; no copy when it already is.
    return np.ascontiguousarray(check_batch(batch, spec, source, max_batch=None))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_input(path: Path, spec: Spec) -> np.ndarray:
    """A PNG/JPEG picture or an .npz of images -> checked float32 (N, *item_shape); one image -> a batch of 1.

    What is read but looks wrong (a misnamed picture, values in a sliver of the range) is warned about on stderr.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                names = archive.files
                if "x" in names:
                    images = archive["x"]
                elif len(names) == 1:
                    images = archive[names[0]]
                else:
                    raise InputError(f"{path}: expected an array named 'x' (or a single array), found {sorted(names)}")
        except InputError:
            raise
        except Exception as error:  # not a zip, truncated, pickled objects...
            raise InputError(f"{path}: not a readable .npz file ({error})") from error
        images = np.asarray(images)
        if images.shape == spec.item_shape:  # one image
            images = images[None]
        batch = check_runner_batch(images, spec, str(path))
        if (warning := range_warning(batch, spec, str(path))) is not None:
            warn(warning)
        return batch
    data = path.read_bytes()
    wrong_name = misnamed(path.name, data)
    try:
        batch = check_runner_batch(picture_to_input(data, spec)[None], spec, str(path))
    except ImageError as error:
        hint = f" ({wrong_name})" if wrong_name else ""
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            hint = " (INPUT must be a PNG/JPEG or an .npz)"
        raise InputError(f"{path}: {error}{hint}") from error
    if wrong_name:
        warn(f"{path}: {wrong_name}")
    return batch


def top_k(probabilities: np.ndarray, labels: list[str], k: int = TOP_K) -> list[tuple[str, float]]:
    """The k most likely labels of one row of probabilities, most likely first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(labels[i], float(probabilities[i])) for i in order]


def format_prediction(index: int, probabilities: np.ndarray, labels: list[str]) -> str:
    best = top_k(probabilities, labels)
    ranked = ", ".join(f"{label}: {p:.4f}" for label, p in best)
    return f"[{index}] label {best[0][0]}  top-{TOP_K} {ranked}"


def main(description: str, make_predictor: Callable[[argparse.Namespace], Predictor],
         add_arguments: Callable[[argparse.ArgumentParser], None] | None = None, argv=None) -> np.ndarray:
    """The shared command line: parse, load the verified model, predict INPUT, print the answers."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the model file (recorded in its artifacts manifest)")
    parser.add_argument("input", type=Path, metavar="INPUT",
                        help="a PNG/JPEG picture, or an .npz of images (N, *item_shape) in the spec's range")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        predictor = make_predictor(args)
        batch = load_input(args.input, predictor.spec)
        probabilities = predictor.predict(batch)
    except (InputError, manifest.ManifestError, specs.SpecError, FileNotFoundError, ValueError, RuntimeError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"{predictor.name} ({predictor.framework}, {predictor.precision}): {len(batch)} image(s) from {args.input}")
    for index, row in enumerate(probabilities):
        print(format_prediction(index, row, predictor.spec.labels))
    return probabilities
