"""The images the containers start from, pinned by digest, and the command that refreshes the digests.

    python -m deploy.pin_images              # each image, its digest (or why it has none), where it is written
    python -m deploy.pin_images --refresh    # ask the registry for each tag's digest now and write it everywhere
    python -m deploy.pin_images --check      # exit 1 when an image whose tag can move has no digest

A tag can move (nginx:1.27-alpine and python:3.11.14-slim-bookworm are rebuilt for security
fixes); `name:tag@sha256:<digest>` always pulls the same bytes, and the tag stays for the reader.
The one list of images is the table of servers, core/servers.py (each row's container image: the
official image compose and the Docker launcher run, or the base an image of ours is built FROM;
deploy/containers/plan.py sorts them); the Dockerfiles and the compose file repeat them (tests/deploy holds
them to the plan), and `--refresh` rewrites all of them. It needs `docker buildx imagetools inspect`
(Docker with buildx) or `crane digest` (go-containerregistry) and the registry's network; this project's
own machines have neither, so the digests committed were read from public records of those exact tags
(TAG_ONLY: where none was found, the tag alone, until someone runs `--refresh`).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from core import paths

# Where the references are written, under the repository root: the table first (the one list), then the
# compose file and every Dockerfile.
FILES = ("core/servers.py", "deploy/docker-compose.yml",
         *sorted(path.relative_to(paths.REPO_ROOT).as_posix()
                 for path in (paths.REPO_ROOT / "deploy" / "docker").glob("*.Dockerfile")))
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Images still pinned by tag only, and why: run `python -m deploy.pin_images --refresh` where a registry answers.
TAG_ONLY = {
    "pytorch/torchserve:0.12.0-cpu": "no public record of this tag's digest was found to commit; TorchServe "
                                     "0.12.0 is its last release, the tag is not expected to move",
    "tensorflow/serving:2.18.0": "no public record of this tag's digest was found to commit; a release tag",
}


class PinError(RuntimeError):
    """No tool to ask the registry, or the registry did not answer."""


def references() -> dict[str, str]:
    """{image: reference as committed} from the plan (the official images, then the bases ours build FROM)."""
    from deploy.containers import plan

    return {**plan.official_images(), **plan.build_only_images()}


def tag_of(reference: str) -> str:
    """`name:tag` without its digest."""
    return reference.split("@", 1)[0]


def is_pinned(reference: str) -> bool:
    return bool(DIGEST.search(reference))


def registry_digest(tag: str, run: Callable = subprocess.run) -> str:
    """The digest (sha256:...) the registry serves for `tag` now: the multi-platform index's, as `docker pull` uses."""
    if shutil.which("docker"):
        done = run(["docker", "buildx", "imagetools", "inspect", tag, "--format", "{{json .Manifest}}"],
                   capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            return json.loads(done.stdout)["digest"]
        error = done.stderr.strip()
    elif shutil.which("crane"):
        done = run(["crane", "digest", tag], capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            return done.stdout.strip()
        error = done.stderr.strip()
    else:
        raise PinError("neither `docker buildx` nor `crane` is installed: install one (and reach the registry) "
                       "to read digests")
    raise PinError(f"{tag}: the registry did not give a digest: {error[-300:]}")


def refresh(root: Path = paths.REPO_ROOT, resolve: Callable[[str], str] = registry_digest,
            progress: Callable[[str], None] = print) -> dict[str, str]:
    """Pin every image to its tag's digest now, in every file of FILES under `root`; {image: new reference}."""
    texts = {name: (root / name).read_text() for name in FILES}
    pinned = {}
    for image, reference in references().items():
        digest = resolve(tag_of(reference))
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise PinError(f"{tag_of(reference)}: {digest!r} is not a sha256 digest")
        new = f"{tag_of(reference)}@{digest}"
        # Whole references only: a reference followed by more name characters is another image.
        pattern = re.compile(re.escape(reference) + r"(?![\w.@:/-])")
        found = [name for name, text in texts.items() if pattern.search(text)]
        for name in found:
            texts[name] = pattern.sub(new, texts[name])
        pinned[image] = new
        progress(f"{image}: {new}" + (" (unchanged)" if new == reference else f" in {', '.join(found)}"))
    for name, text in texts.items():
        paths.write_atomic(root / name, text)
    return pinned


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--refresh", action="store_true", help="read each tag's digest from the registry and write it")
    action.add_argument("--check", action="store_true", help="exit 1 when an image whose tag can move has no digest")
    args = parser.parse_args(argv)
    if args.refresh:
        try:
            refresh()
        except PinError as error:
            raise SystemExit(f"error: {error}") from None
        print("commit the files above; tests/deploy checks they agree")
        return
    loose = []
    for image, reference in references().items():
        if is_pinned(reference):
            print(f"{image:<12}{reference}")
        else:
            why = TAG_ONLY.get(reference)
            print(f"{image:<12}{reference}  (tag only: {why or 'not pinned'})")
            if why is None:
                loose.append(reference)
    if args.check and loose:
        print(f"not pinned by digest: {', '.join(loose)}; run `python -m deploy.pin_images --refresh`", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
