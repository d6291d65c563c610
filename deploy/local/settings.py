"""Named server settings: what a server variant changes on top of the checked-in configs.

    python -m deploy.local.runner start --settings latency      # make serve PROFILE=latency
    python -m deploy.local.runner start --settings throughput   # make serve PROFILE=throughput

The checked-in files (serving/torchserve/config.properties, serving/tfserving/batching.config)
are the "default" settings. The "latency" and "throughput" profiles are not picked by hand: the
settings search (benchmarks/search.py, `make tune`) measures a grid of settings per server and
writes the two it picks into deploy/local/profiles.json, which is committed, so a fresh clone has
them. A variant names only what it changes, and the runner applies it while rendering that run's
config files (deploy/local/servers.py); the container configs are rendered from the same profiles
(deploy/containers/configs.py). The runner writes the settings in force to
`<run folder>/settings.json`; the load sweep (benchmarks/sweep.py) compares "default" with both
profiles in one run and records them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from core import servers

PROFILES_FILE = Path(__file__).with_name("profiles.json")
PROFILES = ("latency", "throughput")


@dataclass(frozen=True)
class ServerSettings:
    name: str = "default"
    # Keys of the model entry in config.properties' `models=` JSON: minWorkers, maxWorkers,
    # batchSize, maxBatchDelay (ms), responseTimeout, startupTimeout (s).
    torchserve: dict = field(default_factory=dict)
    # Environment of TorchServe's processes (its Python workers inherit it), e.g. {"OMP_NUM_THREADS": "1"}.
    torchserve_env: dict = field(default_factory=dict)
    # Top-level keys of config.properties, e.g. {"number_of_netty_threads": 2, "netty_client_threads": 1}.
    torchserve_config: dict = field(default_factory=dict)
    # False starts TF Serving without --enable_batching.
    tfserving_batching: bool = True
    # Fields of batching.config: max_batch_size, batch_timeout_micros, max_enqueued_batches, num_batch_threads.
    tfserving: dict = field(default_factory=dict)
    # More tensorflow_model_server flags (the compatible server takes the same), e.g.
    # {"tensorflow_intra_op_parallelism": 1, "rest_api_num_threads": 8}.
    tfserving_flags: dict = field(default_factory=dict)
    # Flags of serving/kserve/server.py for both KServe servers, e.g. {"grpc-threads": 2, "torch-threads": 1}.
    kserve_flags: dict = field(default_factory=dict)
    # Flags of serving/rayserve/cluster.py, e.g. {"max-batch-size": 1, "replicas": 2}.
    rayserve_flags: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_torchserve(self.name, self.torchserve)

    def to_dict(self) -> dict:
        return asdict(self)

    def merged(self, **changes) -> ServerSettings:
        """These settings with some fields replaced (a grid point of the search: one server's fields)."""
        return ServerSettings(**{**asdict(self), **changes})


POSITIVE_KEYS = ("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay", "responseTimeout", "startupTimeout")


def check_torchserve(name: str, model_keys: dict) -> None:
    """Refuse model settings TorchServe would silently replace.

    TorchServe 0.12 reads a non-positive number in the `models=` JSON as "not set" and uses its own
    default instead (ConfigManager.getJsonIntValue): `maxBatchDelay: 0` becomes a 100 ms wait for
    company, the opposite of what it looks like. No wait at all is `batchSize: 1`."""
    for key, value in model_keys.items():
        if key in POSITIVE_KEYS and int(value) < 1:
            hint = " (TorchServe reads 0 as unset and waits its default 100 ms; for no wait use batchSize 1)" \
                if key == "maxBatchDelay" else ""
            raise ValueError(f"settings {name!r}: TorchServe {key} must be at least 1, got {value}{hint}")


def server_fields() -> dict[str, tuple]:
    """Which fields belong to which server (each row's `settings`, core/servers.py): a search of one server
    changes only its own. The two KServe servers share theirs."""
    return {name: row.settings for name, row in servers.SERVERS.items() if row.settings}


def from_dict(name: str, values: dict) -> ServerSettings:
    known = {f.name for f in fields(ServerSettings)} - {"name"}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"settings {name!r}: unknown fields {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(known))}")
    return ServerSettings(name=name, **values)


def load_profiles(path: Path | None = None) -> dict:
    """{profile name: ServerSettings} from the committed profiles file (written by `make tune`)."""
    data = json.loads(Path(path or PROFILES_FILE).read_text())
    return {name: from_dict(name, data["profiles"][name]) for name in PROFILES}


def presets() -> dict:
    return {"default": ServerSettings(), **load_profiles()}


PRESET_NAMES = ("default", *PROFILES)


def preset(name: str) -> ServerSettings:
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown server settings {name!r}; known: {', '.join(PRESET_NAMES)}")
    return presets()[name]
