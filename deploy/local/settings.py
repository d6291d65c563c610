"""Named server settings: what a server variant changes on top of the checked-in configs.

    python -m deploy.local.runner start --settings tuned     # both servers with the "tuned" settings

The checked-in files (serving/torchserve/config.properties, serving/tfserving/batching.config)
are the "default" settings. A variant names only what it changes, and the runner applies it while
rendering that run's config files (deploy/local/servers.py), so nobody copies a config by hand.
The runner writes the settings in force to `<run folder>/settings.json`; the load sweep
(serving/load/sweep.py) compares "default" with "tuned" in one run and records both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ServerSettings:
    name: str = "default"
    # Keys of the model entry in config.properties' `models=` JSON: minWorkers, maxWorkers,
    # batchSize, maxBatchDelay (ms), responseTimeout.
    torchserve: dict = field(default_factory=dict)
    # Environment of TorchServe's processes (its Python workers inherit it), e.g. {"OMP_NUM_THREADS": "1"}.
    torchserve_env: dict = field(default_factory=dict)
    # False starts TF Serving without --enable_batching.
    tfserving_batching: bool = True
    # Fields of batching.config: max_batch_size, batch_timeout_micros, max_enqueued_batches, num_batch_threads.
    tfserving: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "default": ServerSettings(),
    # Two Python workers for two cores, one intra-op thread each (two workers each spinning two
    # threads would fight over the cores), bigger batches with a shorter wait: more throughput for
    # about 260 MB more memory. TF Serving without batching: every request runs at once.
    "tuned": ServerSettings(name="tuned", torchserve={"minWorkers": 2, "maxWorkers": 2, "batchSize": 16,
                                                      "maxBatchDelay": 2},
                            torchserve_env={"OMP_NUM_THREADS": "1"}, tfserving_batching=False),
}


def preset(name: str) -> ServerSettings:
    if name not in PRESETS:
        raise ValueError(f"unknown server settings {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]
