"""Turn a folder of pictures, one sub-folder per class, into the .npz that training reads.

    python -m training.images_to_npz photos/ --size 32x32 -o mine.npz            # RGB, 3 channels
    python -m training.images_to_npz photos/ --size 28x28 --grey --name shapes -o mine.npz
    make train DATA=mine.npz                                                     # then as usual

    photos/
      cat/   a.jpg b.png ...          class names: the sub-folder names, sorted
      dog/   ...                      pictures: .png, .jpg, .jpeg (other files are skipped, and said so)

Every picture is made into one input by exactly the resize the servers, runners and the page apply
to an uploaded picture (`training.preprocess`, kind "resize": EXIF orientation, alpha onto white,
grey or RGB, area average to H x W), then rounded to uint8 0..255, so training sees what serving
will see (within half a grey level). Writes x (N, H, W) uint8 for --grey or (N, H, W, 3) for --rgb,
y (N,) class ids, labels (K,) and name. A bad folder stops with a message naming the problem: no
class folders, only one class, an empty class, an unreadable picture (by its path).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from training.preprocess import ImageError, picture_to_input
from training.spec import (MAX_CLASSES, MAX_SIDE, MIN_CLASSES, MIN_SIDE, NAME_PATTERN, RESIZE_REDUCTION, ModelConfig,
                           derive_spec)

SUFFIXES = (".png", ".jpg", ".jpeg")


class FolderError(ValueError):
    """The folder cannot become a data set; the message names the problem (and the file)."""


def parse_size(text: str) -> tuple[int, int]:
    """'32x24' -> (32, 24): height x width, each MIN_SIDE..MAX_SIDE."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"size must be HxW, like 32x32, got {text!r}")
    height, width = int(match.group(1)), int(match.group(2))
    for side in (height, width):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise argparse.ArgumentTypeError(f"each side must be {MIN_SIDE}..{MAX_SIDE} pixels, got {text!r}")
    return height, width


def default_name(folder: Path) -> str:
    """A model name from the folder's name: lower case, [a-z0-9_], starting with a letter."""
    name = re.sub(r"[^a-z0-9_]+", "_", folder.resolve().name.lower()).strip("_")[:40] or "pictures"
    return name if name[0].isalpha() else f"m_{name}"[:40]


def class_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FolderError(f"{folder}: not a folder")
    classes = sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not classes:
        raise FolderError(f"{folder}: no class folders; put each class's pictures in a sub-folder named after it "
                          "(e.g. cat/, dog/)")
    if len(classes) < MIN_CLASSES:
        raise FolderError(f"{folder}: only one class ({classes[0].name}); at least {MIN_CLASSES} class folders "
                          "are needed")
    if len(classes) > MAX_CLASSES:
        raise FolderError(f"{folder}: {len(classes)} class folders; at most {MAX_CLASSES} are supported")
    return classes


def convert(folder: Path, size: tuple[int, int], channels: int = 3, name: str | None = None,
            progress=print) -> dict:
    """The folder -> {"x", "y", "labels", "name", "skipped"}; FolderError names what is wrong."""
    folder = Path(folder)
    name = name or default_name(folder)
    if not NAME_PATTERN.match(name):
        raise FolderError(f"name {name!r}: use 1-40 characters a-z, 0-9, _, starting with a letter")
    item_shape = size if channels == 1 else (*size, channels)
    # The spec of the task this folder becomes, as far as the resize needs it (range 0..255).
    spec = derive_spec(ModelConfig(), item_shape=item_shape, labels=("a", "b"), value_range=(0.0, 255.0),
                       model_name=name, reduction=RESIZE_REDUCTION)
    classes = class_folders(folder)
    xs, ys, skipped = [], [], []
    for class_id, class_folder in enumerate(classes):
        files = sorted(path for path in class_folder.rglob("*") if path.is_file() and not path.name.startswith("."))
        pictures = [path for path in files if path.suffix.lower() in SUFFIXES]
        skipped += [path for path in files if path.suffix.lower() not in SUFFIXES]
        if not pictures:
            raise FolderError(f"{class_folder}: class {class_folder.name!r} holds no pictures ({', '.join(SUFFIXES)})")
        for path in pictures:
            try:
                values = picture_to_input(path.read_bytes(), spec)
            except (ImageError, OSError) as error:
                raise FolderError(f"{path}: {error}") from error
            xs.append(np.round(values).astype(np.uint8))
            ys.append(class_id)
        progress(f"[{class_id + 1}/{len(classes)}] {class_folder.name}: {len(pictures)} pictures")
    return {"x": np.stack(xs), "y": np.asarray(ys, np.int64), "labels": [path.name for path in classes],
            "name": name, "skipped": skipped}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder with one sub-folder of pictures per class")
    parser.add_argument("--size", type=parse_size, required=True, help="HxW of the model's input, e.g. 32x32")
    colour = parser.add_mutually_exclusive_group()
    colour.add_argument("--grey", dest="channels", action="store_const", const=1, help="1 channel: x (N, H, W)")
    colour.add_argument("--rgb", dest="channels", action="store_const", const=3,
                        help="3 channels: x (N, H, W, 3) (the default)")
    parser.add_argument("--name", help="the model name (default: from the folder's name)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the .npz to write")
    args = parser.parse_args(argv)
    try:
        result = convert(args.folder, args.size, args.channels or 3, args.name)
    except FolderError as error:
        raise SystemExit(f"error: {error}")
    if result["skipped"]:
        shown = ", ".join(str(path) for path in result["skipped"][:5])
        more = f" and {len(result['skipped']) - 5} more" if len(result["skipped"]) > 5 else ""
        print(f"skipped {len(result['skipped'])} file(s) that are not {'/'.join(SUFFIXES)}: {shown}{more}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x=result["x"], y=result["y"], labels=np.asarray(result["labels"]),
                        name=np.asarray(result["name"]))
    counts = np.bincount(result["y"], minlength=len(result["labels"]))
    print(f"wrote {args.out}: x {result['x'].shape} uint8, name {result['name']!r}, {len(result['labels'])} classes: "
          + ", ".join(f"{label} ({count})" for label, count in zip(result["labels"], counts)))
    print(f"next: python -m training.train --data {args.out}   (or make deploy-all DATA={args.out})")


if __name__ == "__main__":
    main()
