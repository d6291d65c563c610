"""The task's spec as every stage reads it: shapes, labels, value range, names, limits.

Training derives the spec from the data (`training/spec.py`) and writes it to
`artifacts/spec.json`; every later stage (servers, handlers, runners, clients, the page, deploy/,
the load tools, the tests) reads it through `load()` and the `Spec` accessors here, instead of
re-declaring a constant. Standard library only: the edge runtime and the TorchServe archive ship it.

    from core import spec
    task = spec.load()                 # artifacts/spec.json (or $DIGITS_ARTIFACTS/spec.json)
    task.item_shape                    # (8, 8) for the digits, (12, 16, 3) for a colour task
    task.labels, task.value_min, task.value_max, task.model_name
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core import servers

SPEC_VERSION = 2

# What one request may carry, on every server and API, whatever the task: larger requests get a
# client error (HTTP 400/413, gRPC INVALID_ARGUMENT/RESOURCE_EXHAUSTED) instead of tying up a worker.
# serving/torchserve/config.properties (max_request_size) and serving/tfserving/batching.config
# (max_batch_size) hold the same numbers for the servers that read them; a test checks they agree.
MAX_BATCH_SIZE = 512  # images per request
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # bytes of one request body (4 MiB, gRPC's default message limit)
# An oversized body up to this is read and dropped before the 413, so the client reads the answer on a
# connection that stays usable; beyond it the server answers and closes the connection.
DRAIN_LIMIT = 64 * MAX_REQUEST_BYTES

# Where the servers listen by default (environment variables override them: serving/endpoints.py): every
# port of the table of servers (core/servers.py, standard library only too), key -> default.
SERVING_HOST = "127.0.0.1"
SERVING_PORTS = servers.ports()


class SpecError(ValueError):
    """A spec file that is missing, unreadable or from another version; the message says what to do."""


@dataclass(frozen=True)
class Spec:
    """Read-only view of a spec dict (what `spec.json` holds); `data` is the dict itself."""

    data: dict

    # -- the task --
    @property
    def model_name(self) -> str:
        return self.data["model_name"]

    @property
    def labels(self) -> list[str]:
        return list(self.data["labels"])

    @property
    def num_classes(self) -> int:
        return len(self.data["labels"])

    # -- the input: (N, *item_shape) float32 raw values in [value_min, value_max] --
    @property
    def input_name(self) -> str:
        return self.data["input"]["name"]

    @property
    def output_name(self) -> str:
        return self.data["output"]["name"]

    @property
    def item_shape(self) -> tuple[int, ...]:
        """The shape of one image: (H, W) for layout NHW, (H, W, C) for NHWC."""
        return tuple(int(d) for d in self.data["input"]["shape"][1:])

    @property
    def layout(self) -> str:
        return self.data["input"]["layout"]

    @property
    def height(self) -> int:
        return self.item_shape[0]

    @property
    def width(self) -> int:
        return self.item_shape[1]

    @property
    def channels(self) -> int:
        return self.item_shape[2] if len(self.item_shape) == 3 else 1

    @property
    def value_min(self) -> float:
        return float(self.data["input"]["min"])

    @property
    def value_max(self) -> float:
        return float(self.data["input"]["max"])

    @property
    def scale(self) -> float:
        """normalized = raw * scale + offset (applied inside the network)."""
        return float(self.data["normalization"]["scale"])

    @property
    def offset(self) -> float:
        return float(self.data["normalization"]["offset"])

    @property
    def reduction(self) -> dict:
        """How a picture becomes one input: {"kind": "ink_blocks", ...} (the digits) or {"kind": "resize", ...}."""
        return dict(self.data["reduction"])

    @property
    def model(self) -> dict:
        """The network's config (arch, width, ...), as training stored it."""
        return dict(self.data["model"])

    # -- serving --
    @property
    def max_batch_size(self) -> int:
        return int(self.data["serving"]["limits"]["max_batch_size"])

    @property
    def max_request_bytes(self) -> int:
        return int(self.data["serving"]["limits"]["max_request_bytes"])

    def describe_item(self) -> str:
        """One image's shape in words for messages: '8x8', '12x16x3'."""
        return "x".join(str(d) for d in self.item_shape)

    def value_range(self) -> str:
        return f"[{self.value_min:g}, {self.value_max:g}]"


def spec_file(root: Path | None = None) -> Path:
    """Where the spec of artifacts folder `root` lies (default: $DIGITS_ARTIFACTS or ./artifacts)."""
    if root is None:
        from core import paths  # imported here: a shipped copy (TorchServe archive) always passes a root

        root = paths.artifacts_dir()
    return Path(root) / "spec.json"


def from_file(path: Path) -> Spec:
    """The spec in file `path`; SpecError when it is missing, unreadable or from another version."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"{path} not found: run `make train` first")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SpecError(f"{path}: not a readable spec ({error}); retrain with `make train`") from error
    return from_dict(data, str(path))


def from_dict(data: dict, source: str = "spec") -> Spec:
    if not isinstance(data, dict) or data.get("spec_version") != SPEC_VERSION:
        found = data.get("spec_version") if isinstance(data, dict) else None
        raise SpecError(f"{source}: spec_version {found!r}, expected {SPEC_VERSION}; retrain with `make train`")
    return Spec(data)


def load(root: Path | None = None) -> Spec:
    """The spec of the artifacts folder `root` (default: the one in force)."""
    return from_file(spec_file(root))
