"""The one source of truth for everything every target must agree on.

Model name, labels, the input contract (shape, dtype, value range), the normalization that the
network applies to that input, tensor names, the drawing-to-input reduction and the network's
size. Training writes `build_spec(...)` to `artifacts/spec.json`; every later stage (servers,
edge runners, the browser demo, deploy/) reads that file instead of re-declaring a constant.

The contract, in one sentence: every artifact takes a float32 tensor (N, 8, 8) of raw digit values
0..16 (the dataset's own scale) and returns float32 (N, 10) probabilities that sum to 1.
Normalization and the channel axis live inside the network, so every client sends the same thing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SPEC_VERSION = 1

MODEL_NAME = "digits"
LABELS = tuple(str(digit) for digit in range(10))
NUM_CLASSES = len(LABELS)

IMAGE_SIZE = 8  # the dataset's images are 8x8
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
INPUT_DTYPE = "float32"
VALUE_MIN = 0.0
VALUE_MAX = 16.0  # each pixel counts the inked pixels of a 4x4 block: 0..16

# Applied inside the network: normalized = raw * INPUT_SCALE + INPUT_OFFSET, giving 0..1.
INPUT_SCALE = 1.0 / VALUE_MAX
INPUT_OFFSET = 0.0

# How a drawing or photo becomes the 8x8 input, the way the dataset itself was made:
# binarize, crop to the digit, scale into a 32x32 bitmap, count ink per 4x4 block.
BITMAP_SIZE = 32
BLOCK_SIZE = BITMAP_SIZE // IMAGE_SIZE  # 4, so a block holds 0..16 inked pixels
INK_ALPHA_THRESHOLD = 128  # on a transparent background (a canvas), alpha >= this is ink
MIN_CONTRAST = 32  # grey levels (of 255) between ink and background, below which there is no digit

WIDTHS = (1, 2, 4, 8)  # allowed width multipliers

# Where the model servers listen by default (clients, the process runner and deploy/ read these;
# environment variables override them at run time, see serving/endpoints.py).
SERVING_HOST = "127.0.0.1"
SERVING_PORTS = {
    "torchserve_inference": 8080,  # REST predictions (token auth)
    "torchserve_management": 8081,  # REST management (token auth)
    "torchserve_metrics": 8082,  # Prometheus metrics
    "torchserve_grpc_inference": 7070,
    "torchserve_grpc_management": 7071,
    "tfserving_grpc": 8500,
    "tfserving_rest": 8501,
    "web_demo": 8000,  # the static web server of the browser demo (deploy/: nginx serving artifacts/web/)
}

# What one request may carry, on every server and API: larger requests get a client error
# (HTTP 400/413, gRPC INVALID_ARGUMENT/RESOURCE_EXHAUSTED) instead of tying up a worker.
# serving/torchserve/config.properties (max_request_size) and serving/tfserving/batching.config
# (max_batch_size) hold the same numbers for the servers that read them; a test checks they agree.
MAX_BATCH_SIZE = 512  # images per request
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # bytes of one request body (4 MiB, gRPC's default message limit)


@dataclass(frozen=True)
class ModelConfig:
    """The size of the network; both frameworks build their layers from this alone.

    `width` multiplies every channel count and the hidden layer, so benchmarks can show how
    cost grows with model size. Stored in checkpoints so loading needs nothing else.
    """

    width: int = 1
    kernel_size: int = 3
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if self.width not in WIDTHS:
            raise ValueError(f"width must be one of {WIDTHS}, got {self.width!r}")

    @property
    def conv1_channels(self) -> int:
        return 8 * self.width

    @property
    def conv2_channels(self) -> int:
        return 16 * self.width

    @property
    def hidden_units(self) -> int:
        return 32 * self.width

    @property
    def pooled_size(self) -> int:
        return IMAGE_SIZE // 2  # one 2x2 max-pool: 8x8 -> 4x4

    def to_dict(self) -> dict:
        return {"width": self.width, "kernel_size": self.kernel_size, "dropout": self.dropout}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(width=int(data["width"]), kernel_size=int(data["kernel_size"]), dropout=float(data["dropout"]))


def build_spec(config: ModelConfig, *, seed: int | None = None, data_source: str = "sklearn.load_digits") -> dict:
    """The spec as a JSON-ready dict (what `artifacts/spec.json` holds)."""
    return {
        "spec_version": SPEC_VERSION,
        "model_name": MODEL_NAME,
        "labels": list(LABELS),
        "input": {
            "name": INPUT_NAME,
            "dtype": INPUT_DTYPE,
            "shape": [-1, IMAGE_SIZE, IMAGE_SIZE],
            "layout": "NHW",
            "min": VALUE_MIN,
            "max": VALUE_MAX,
        },
        "normalization": {"scale": INPUT_SCALE, "offset": INPUT_OFFSET, "inside_network": True},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [-1, NUM_CLASSES], "sums_to": 1.0},
        "reduction": {
            "steps": ["binarize", "crop_to_ink", "scale_into_bitmap", "count_ink_per_block"],
            "bitmap_size": BITMAP_SIZE,
            "block_size": BLOCK_SIZE,
            "ink_alpha_threshold": INK_ALPHA_THRESHOLD,
            "min_contrast": MIN_CONTRAST,
        },
        "model": config.to_dict(),
        "training": {"seed": seed, "data_source": data_source},
        "serving": {"model_name": MODEL_NAME, "host": SERVING_HOST, "ports": dict(SERVING_PORTS),
                    "limits": {"max_batch_size": MAX_BATCH_SIZE, "max_request_bytes": MAX_REQUEST_BYTES}},
    }


def write_spec(spec: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2) + "\n")


def load_spec(path: Path) -> dict:
    """Read a spec written by training; fail clearly when it is missing or from another version."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `make train` first")
    spec = json.loads(path.read_text())
    if spec.get("spec_version") != SPEC_VERSION:
        raise ValueError(f"{path}: spec_version {spec.get('spec_version')!r}, expected {SPEC_VERSION}; retrain")
    return spec
