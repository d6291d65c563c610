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
y (N,) class ids, labels (K,) and name. A bad folder stops with a one-line message naming the
problem: no class folders, only one class, an empty class, an unreadable picture or a picture in
another format (by its path), a folder that cannot be read. Taken, but reported by name: files that
are not pictures, links that lead out of the folder (skipped: only what is inside is read), pictures
whose content is not what their name says (a PNG named .jpg), and pictures far from HxW (enlarged
more than 4x, or stretched more than 4x: a 3x3 icon or a 1000x10 strip beside photos).
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import numpy as np

from training.preprocess import ImageError, decode, image_to_input, misnamed
from training.spec import (
    MAX_CLASSES,
    MAX_SIDE,
    MIN_CLASSES,
    MIN_SIDE,
    NAME_PATTERN,
    RESIZE_REDUCTION,
    ModelConfig,
    derive_spec,
    name_from,
)

SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_ENLARGE, MAX_STRETCH = 4.0, 4.0  # beyond these a picture is reported: its resize to HxW is mostly guesswork
SHOWN = 5  # files named per report line


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
    return name_from(folder.resolve().name)


def leads_outside(path: Path, root: Path) -> bool:
    """Whether `path` (a link, or inside one) resolves to somewhere outside the folder `root` (resolved)."""
    return not path.resolve().is_relative_to(root)


def class_folders(folder: Path, outside: list) -> list[Path]:
    """The class sub-folders, sorted; links that lead out of `folder` are skipped and added to `outside`."""
    if not folder.is_dir():
        raise FolderError(f"{folder}: not a folder")
    root = folder.resolve()
    entries = sorted(path for path in _listing(folder) if path.is_dir() and not path.name.startswith("."))
    outside += [path for path in entries if leads_outside(path, root)]
    classes = [path for path in entries if not leads_outside(path, root)]
    if not classes:
        raise FolderError(f"{folder}: no class folders; put each class's pictures in a sub-folder named after it "
                          "(e.g. cat/, dog/)")
    if len(classes) < MIN_CLASSES:
        raise FolderError(f"{folder}: only one class ({classes[0].name}); at least {MIN_CLASSES} class folders "
                          "are needed")
    if len(classes) > MAX_CLASSES:
        raise FolderError(f"{folder}: {len(classes)} class folders; at most {MAX_CLASSES} are supported")
    return classes


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as error:
        raise FolderError(f"{folder}: cannot be read ({error.strerror})") from None


def _unreadable(error: OSError):
    raise FolderError(f"{error.filename}: cannot be read ({error.strerror})")


def class_files(class_folder: Path, root: Path, outside: list) -> list[Path]:
    """Every file under a class folder, sorted, without following links to folders; a link to a file
    outside the folder `root` is skipped and added to `outside`. FolderError for what cannot be read."""
    files = []
    for parent, folders, names in os.walk(class_folder, onerror=_unreadable):
        folders[:] = [f for f in folders if not f.startswith(".")]
        files += [Path(parent) / n for n in names if not n.startswith(".") and (Path(parent) / n).is_file()]
    outside += [path for path in files if path.is_symlink() and leads_outside(path, root)]
    return sorted(path for path in files if not (path.is_symlink() and leads_outside(path, root)))


def far_from(picture_size: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether a (width, height) picture is enlarged more than MAX_ENLARGE or stretched more than MAX_STRETCH
    on its way to HxW `size`."""
    (width, height), (out_h, out_w) = picture_size, size
    enlarged = max(out_h / height, out_w / width)
    stretch = (out_w / out_h) / (width / height)
    return enlarged > MAX_ENLARGE or max(stretch, 1 / stretch) > MAX_STRETCH


def read_picture(path: Path, spec, report: dict):
    """One picture file -> its input (float32, spec.item_shape); a misnamed one or one far from the size
    is noted in `report`; FolderError (one line, by path) for what cannot be read."""
    try:
        data = path.read_bytes()
        wrong_name = misnamed(path.name, data)
        image = decode(data)
    except ImageError as error:
        raise FolderError(f"{path}: {error}" + (f" ({wrong_name})" if wrong_name else "")) from None
    except OSError as error:
        raise FolderError(f"{path}: cannot be read ({error.strerror})") from None
    if wrong_name:
        report["misnamed"].append(f"{path} ({wrong_name})")
    report["sizes"].append((image.size, path))
    return image_to_input(image, spec)


def convert(folder: Path, size: tuple[int, int], channels: int = 3, name: str | None = None,
            progress=print) -> dict:
    """The folder -> {"x", "y", "labels", "name", "skipped", "outside", "misnamed", "far"}; FolderError names
    what is wrong. "outside": links skipped because they lead out of the folder; "misnamed": pictures whose
    content is not their name's format; "far": pictures far from `size`, with their (width, height)."""
    folder = Path(folder)
    name = name or default_name(folder)
    if not NAME_PATTERN.match(name):
        raise FolderError(f"name {name!r}: use 1-40 characters a-z, 0-9, _, starting with a letter")
    item_shape = size if channels == 1 else (*size, channels)
    # The spec of the task this folder becomes, as far as the resize needs it (range 0..255).
    spec = derive_spec(ModelConfig(), item_shape=item_shape, labels=("a", "b"), value_range=(0.0, 255.0),
                       model_name=name, reduction=RESIZE_REDUCTION)
    report = {"skipped": [], "outside": [], "misnamed": [], "sizes": []}
    classes = class_folders(folder, report["outside"])
    xs, ys = [], []
    for class_id, class_folder in enumerate(classes):
        files = class_files(class_folder, folder.resolve(), report["outside"])
        pictures = [path for path in files if path.suffix.lower() in SUFFIXES]
        report["skipped"] += [path for path in files if path.suffix.lower() not in SUFFIXES]
        if not pictures:
            raise FolderError(f"{class_folder}: class {class_folder.name!r} holds no pictures ({', '.join(SUFFIXES)})")
        for path in pictures:
            xs.append(np.round(read_picture(path, spec, report)).astype(np.uint8))
            ys.append(class_id)
        progress(f"[{class_id + 1}/{len(classes)}] {class_folder.name}: {len(pictures)} pictures")
    sizes = report.pop("sizes")
    report["far"] = [(path, picture_size) for picture_size, path in sizes if far_from(picture_size, size)]
    return {"x": np.stack(xs), "y": np.asarray(ys, np.int64), "labels": [path.name for path in classes],
            "name": name, **report}


def named(items: list) -> str:
    """The first SHOWN items of a report, and how many more."""
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(str(item) for item in items[:SHOWN]) + more


def report_lines(result: dict, size: tuple[int, int]) -> list[str]:
    """What convert took without a word of its own: one line per kind, naming the files."""
    lines = []
    if result["skipped"]:
        lines.append(f"skipped {len(result['skipped'])} file(s) that are not {'/'.join(SUFFIXES)}: "
                     f"{named(result['skipped'])}")
    if result["outside"]:
        lines.append(f"warning: skipped {len(result['outside'])} link(s) that lead out of the folder: "
                     + named([f"{path} -> {path.resolve()}" for path in result["outside"]]))
    if result["misnamed"]:
        lines.append(f"warning: {len(result['misnamed'])} picture(s) whose content is not what their name says: "
                     f"{named(result['misnamed'])}")
    if result["far"]:
        lines.append(f"warning: {len(result['far'])} picture(s) far from {size[0]}x{size[1]} (enlarged more than "
                     f"{MAX_ENLARGE:g}x or stretched more than {MAX_STRETCH:g}x: their input is mostly guesswork): "
                     + named([f"{path} ({h}x{w})" for path, (w, h) in result["far"]]))
    return lines


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
        raise SystemExit(f"error: {error}") from None
    for line in report_lines(result, args.size):
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x=result["x"], y=result["y"], labels=np.asarray(result["labels"]),
                        name=np.asarray(result["name"]))
    counts = np.bincount(result["y"], minlength=len(result["labels"]))
    print(f"wrote {args.out}: x {result['x'].shape} uint8, name {result['name']!r}, {len(result['labels'])} classes: "
          + ", ".join(f"{label} ({count})" for label, count in zip(result["labels"], counts, strict=False)))
    print(f"next: python -m training.train --data {args.out}   (or make deploy-all DATA={args.out})")


if __name__ == "__main__":
    main()
