"""The spec derived from the data: the one source of truth every later stage reads.

Training calls `derive_spec(...)` with what it learned from the data set (shape of one image,
value range, class names, model name) and writes the result to `artifacts/spec.json`; every later
stage reads that file through `core/spec.py`. This module is the only place that knows the
built-in task's own facts (the digits: 8x8, values 0..16, labels "0".."9", the ink-count
reduction), and they are used only when no data of your own is given.

The contract, in one sentence: every artifact takes a float32 tensor (N, *item_shape) of raw
values in the data's own range and returns float32 (N, K) probabilities that sum to 1.
Normalization (and the channel axis of grey images) live inside the network, so every client
sends the same thing.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from core.spec import MAX_BATCH_SIZE, MAX_REQUEST_BYTES, SERVING_HOST, SERVING_PORTS, SPEC_VERSION, Spec, SpecError
from core.spec import from_file as _from_file

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"

# The built-in task: scikit-learn's digits, 8x8 counts of inked pixels per 4x4 block (0..16).
DIGITS_NAME = "digits"
DIGITS_LABELS = tuple(str(digit) for digit in range(10))
DIGITS_RANGE = (0.0, 16.0)
DIGITS_REDUCTION = {
    # How a drawing or photo becomes the 8x8 input, the way the dataset itself was made:
    # binarize, crop to the digit, scale into a 32x32 bitmap, count ink per 4x4 block.
    "kind": "ink_blocks",
    "steps": ["binarize", "crop_to_ink", "scale_into_bitmap", "count_ink_per_block"],
    "bitmap_size": 32,
    "block_size": 4,
    "ink_alpha_threshold": 128,  # on a transparent background (a canvas), alpha >= this is ink
    "min_contrast": 32,  # grey levels (of 255) between ink and background, below which there is no digit
}
# Every other task: the picture is resized to (H, W), turned grey or RGB as the spec's channels
# say, and its 0..255 pixels mapped linearly onto the spec's value range.
RESIZE_REDUCTION = {"kind": "resize", "steps": ["to_channels", "resize_area", "map_0_255_to_range"]}

# The reference networks model_torch.py and model_keras.py ship (their NETWORKS); a network you add
# to both files is trained with `--arch <its name>` without being listed here.
ARCHS = ("cnn", "resnet")
WIDTHS = (1, 2, 4, 8)  # allowed width multipliers
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # a model name doubles as file, URL and TorchServe name


def name_from(text: str, fallback: str = "pictures") -> str:
    """A model name from a folder's or file's name ("My Pets", "my data"): lower case, runs of anything
    but [a-z0-9_] made one _, at most 40 characters, starting with a letter (NAME_PATTERN)."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")[:40] or fallback
    return name if name[0].isalpha() else f"m_{name}"[:40]
MIN_SIDE, MAX_SIDE = 4, 256
MIN_CLASSES, MAX_CLASSES = 2, 1000


@dataclass(frozen=True)
class ModelConfig:
    """The network's choices; both frameworks build their layers from this and the spec alone.

    `arch` picks the network, `width` multiplies every channel count and the hidden layer, so
    benchmarks can show how cost grows with model size. Stored in checkpoints so loading needs
    nothing else.
    """

    width: int = 1
    kernel_size: int = 3
    dropout: float = 0.3
    arch: str = "cnn"

    def __post_init__(self) -> None:
        if self.width not in WIDTHS:
            raise ValueError(f"width must be one of {WIDTHS}, got {self.width!r}")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(self.arch)):
            raise ValueError(f"arch must name a network of training/model_torch.py and model_keras.py "
                             f"(e.g. {', '.join(ARCHS)}), got {self.arch!r}")

    @property
    def conv1_channels(self) -> int:
        return 8 * self.width

    @property
    def conv2_channels(self) -> int:
        return 16 * self.width

    @property
    def hidden_units(self) -> int:
        return 32 * self.width

    def to_dict(self) -> dict:
        return {"arch": self.arch, "width": self.width, "kernel_size": self.kernel_size, "dropout": self.dropout}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(width=int(data["width"]), kernel_size=int(data["kernel_size"]), dropout=float(data["dropout"]),
                   arch=str(data.get("arch", "cnn")))


def derive_spec(config: ModelConfig, *, item_shape: tuple[int, ...], labels, value_range: tuple[float, float],
                model_name: str, reduction: dict, seed: int | None = None, data_source: str = "") -> dict:
    """The spec as a JSON-ready dict (what `artifacts/spec.json` holds), from what the data says.

    `item_shape` is one image's shape: (H, W) for grey images given as (N, H, W), else (H, W, C).
    """
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"the value range must have max > min, got [{low:g}, {high:g}]")
    layout = "NHW" if len(item_shape) == 2 else "NHWC"
    return {
        "spec_version": SPEC_VERSION,
        "model_name": model_name,
        "labels": [str(label) for label in labels],
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [-1, *map(int, item_shape)], "layout": layout,
                  "min": low, "max": high},
        # Applied inside the network: normalized = raw * scale + offset, giving 0..1.
        "normalization": {"scale": 1.0 / (high - low), "offset": -low / (high - low), "inside_network": True},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [-1, len(labels)], "sums_to": 1.0},
        "reduction": dict(reduction),
        "model": config.to_dict(),
        "training": {"seed": seed, "data_source": data_source},
        "serving": {"model_name": model_name, "host": SERVING_HOST, "ports": dict(SERVING_PORTS),
                    "limits": {"max_batch_size": MAX_BATCH_SIZE, "max_request_bytes": MAX_REQUEST_BYTES}},
    }


def digits_spec(config: ModelConfig = ModelConfig(), seed: int | None = None) -> dict:
    """The built-in task's spec: (N, 8, 8) raw values 0..16 -> 10 digit classes."""
    return derive_spec(config, item_shape=(8, 8), labels=DIGITS_LABELS, value_range=DIGITS_RANGE,
                       model_name=DIGITS_NAME, reduction=DIGITS_REDUCTION, seed=seed,
                       data_source="sklearn.load_digits")


def write_spec(spec: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2) + "\n")


def load_spec(path: Path) -> Spec:
    """Read a spec written by training; SpecError when it is missing or from another version."""
    return _from_file(path)


__all__ = ["ARCHS", "DIGITS_LABELS", "DIGITS_NAME", "DIGITS_RANGE", "DIGITS_REDUCTION", "INPUT_NAME", "ModelConfig",
           "NAME_PATTERN", "OUTPUT_NAME", "RESIZE_REDUCTION", "SpecError", "WIDTHS", "derive_spec", "digits_spec",
           "load_spec", "name_from", "write_spec"]
