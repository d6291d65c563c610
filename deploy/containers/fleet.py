"""The services of an artifacts folder: the plan (plan.py) over its model, with the container configs rendered
for that model (configs.py builds those files from the plan; this module puts the two together).

    python -m deploy.containers.fleet        # print the services planned for ./artifacts
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from core import paths
from core import spec as specs
from core.registry import named
from deploy.containers import configs, plan


def services(root: Path) -> list[plan.Service]:
    """The services for the model trained into artifacts folder `root` (its spec names it): one per row of
    core/servers.py with a container, in start order, each planned by the function its row names.

    The model's config files are the committed deploy/config/ ones when they were rendered for
    this spec (the built-in task), else the copies `configs.render(root)` writes under
    <root>/run/containers/ (deploy/containers/configs.py).
    """
    over = plan.Artifacts(root, specs.load(root).model_name, configs.folder(root) / "config")
    return [named(row.container.service)(row, over) for row in plan.rows().values()]


def describe(root: Path) -> dict:
    """The plan as plain data (printed by `main`, compared with the compose file by the tests)."""
    return {s.name: {"image": s.image, "ports": s.ports, "user": s.user, "command": s.command,
                     "mounts": [f"{m.source} -> {m.target} ({'ro' if m.read_only else 'rw'})" for m in s.mounts]}
            for s in services(root)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    print(json.dumps(describe((args.artifacts or paths.artifacts_dir()).resolve()), indent=2))


if __name__ == "__main__":
    main()
