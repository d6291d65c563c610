"""Apply the Kubernetes manifests (deploy/k8s/) to the cluster kubectl points at.

    python -m deploy.containers.k8s up       # make deploy-all DEPLOY=k8s
    python -m deploy.containers.k8s down     # make down DEPLOY=k8s

`up` checks for kubectl, a reachable cluster and a Docker engine (naming whatever is missing),
builds the images with the artifacts baked in (images.py), applies the kustomization and waits
for each Deployment's rollout. The kustomization is deploy/k8s/ for the built-in task; for a model
of your own it is the one deploy/containers/configs.py renders under
<artifacts>/run/containers/k8s/ (the model's name in the health probes), so the model is served
under its own name. The namespace `digits` is the project's name, whatever model runs in it. A
local cluster must be able to see the images (kind: `kind load docker-image ...`; see
deploy/README.md); pass --no-build when they are already in a registry.
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from core import paths
from core import servers as table
from deploy.containers import cli, configs, fleet, images, plan, preflight
from serving import endpoints as endpoints_mod

MANIFESTS = Path(__file__).resolve().parent.parent / "k8s"  # the built-in task's (committed) kustomization
NAMESPACE = "digits"  # the project's namespace (deploy/k8s/kustomization.yaml), whatever the model


def deployments() -> list[str]:
    """The servers with a Deployment in deploy/k8s/ (their rows' Kubernetes objects), in start order."""
    return [name for name in plan.rows() if "Deployment" in table.manifests(name).get(f"k8s/{name}.yaml", ())]


def up(root: Path, build: bool = True, timeout: int = 300) -> None:
    if build:
        preflight.require("k8s")
        built = images.build(root)
        waited = [name for name in deployments() if plan.baked_image(plan.image_name(name)) in built]
    else:
        preflight.require("k8s", needs=("kubectl", "cluster"))
        waited = deployments()
    manifests = configs.render(root) / "k8s"
    subprocess.run(["kubectl", "apply", "--kustomize", str(manifests)], check=True)
    for name in waited:
        subprocess.run(["kubectl", "--namespace", NAMESPACE, "rollout", "status", f"deployment/{name}",
                        f"--timeout={timeout}s"], check=True)
    print(f"\nservices in namespace {NAMESPACE} (inside the cluster; `kubectl -n {NAMESPACE} port-forward "
          f"svc/<name> <port>` to reach one from here):")
    for service in fleet.services(root):
        if service.name not in deployments():
            continue
        # Each Service is named after its server and listens on the spec's ports.
        inside = endpoints_mod.Endpoints(f"{service.name}.{NAMESPACE}", table.ports()).for_root(root)
        row = table.SERVERS[service.name]
        if row.optional:
            print(f"  {table.label(row.name)}: " + ", ".join(f"{inside.url(key)}/" for key in service.ports))
            continue
        print(f"  {table.label(row.name)} ({row.name}):")
        for line in plan.answers(row.name, root, inside):
            print(f"    {line}")
    print("  no model server authenticates in the cluster (TorchServe runs without its token): the NetworkPolicy "
          "admits only pods labelled digits-everywhere/model-client: \"true\"")


def down() -> None:
    preflight.require("k8s", needs=("kubectl", "cluster"))
    # Every model's rendering holds the same objects (names, namespace): the committed one removes any.
    subprocess.run(["kubectl", "delete", "--kustomize", str(MANIFESTS), "--ignore-not-found"], check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--no-build", action="store_true", help="use images already visible to the cluster")
    parser.add_argument("--timeout", type=int, default=300, help="seconds to wait for each rollout (default: 300)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    cli.guarded(lambda: up(root, build=not args.no_build, timeout=args.timeout) if args.action == "up" else down())


if __name__ == "__main__":
    main()
