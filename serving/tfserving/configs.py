"""The TF Serving layout and config files: versions on disk, manifest ids, rendering the configs.

    artifacts/tfserving/<model name>/<int version>/  one SavedModel per version (export.py)
    serving/tfserving/{models,batching,monitoring}.config   the checked-in configs
    artifacts/run/tfserving/*.config                 the same, rendered for one run

Both the real tensorflow_model_server and the compatible server read the rendered files.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from string import Template

from core import manifest
from core import spec as specs

CONFIG_DIR = Path(__file__).parent
CONFIG_FILES = {"models": "models.config", "batching": "batching.config", "monitoring": "monitoring.config"}


def base_path(root: Path) -> Path:
    """Where the versions of the model trained into `root` lie (named by its spec)."""
    return root / "tfserving" / specs.load(root).model_name


def artifact_id(version: int) -> str:
    """The manifest id of one exported version."""
    return f"tfserving_v{version}"


def versions(model_base: Path) -> list[int]:
    """Integer version directories holding a saved_model.pb, ascending."""
    if not model_base.is_dir():
        return []
    return sorted(int(p.name) for p in model_base.iterdir()
                  if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists())


def newest_artifact_id(root: Path) -> str | None:
    """The manifest id of the newest version exported into `root` (None: none yet)."""
    found = versions(base_path(root))
    return artifact_id(found[-1]) if found else None


def verified_versions(root: Path) -> list[int]:
    """Every version on disk, each checked against the manifest (raises ManifestError)."""
    found = versions(base_path(root))
    for version in found:
        manifest.verify(artifact_id(version), root)
    return found


def rendered_paths(folder: Path) -> dict:
    return {key: folder / name for key, name in CONFIG_FILES.items()}


def render(root: Path, folder: Path, batching: dict | None = None) -> dict:
    """Write this run's config files into `folder` (models.config gets the absolute base path).

    `batching` overrides fields of batching.config, e.g. {"batch_timeout_micros": 500}.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = rendered_paths(folder)
    text = Template((CONFIG_DIR / CONFIG_FILES["models"]).read_text())
    out["models"].write_text(text.substitute(MODEL_NAME=specs.load(root).model_name,
                                             MODEL_BASE_PATH=str(base_path(root).resolve())))
    shutil.copyfile(CONFIG_DIR / CONFIG_FILES["monitoring"], out["monitoring"])
    out["batching"].write_text(batching_text(batching))
    return out


def batching_text(batching: dict | None = None) -> str:
    """The checked-in batching.config with fields of `batching` replaced (or added)."""
    text = (CONFIG_DIR / CONFIG_FILES["batching"]).read_text()
    for name, value in (batching or {}).items():
        text, found = re.subn(rf"^{name}\s*\{{[^}}]*\}}", f"{name} {{ value: {int(value)} }}", text, flags=re.M)
        if not found:
            text += f"{name} {{ value: {int(value)} }}\n"
    return text


def read_text_proto_values(path: Path) -> dict:
    """Scalar fields of a small text proto (`name { value: 3 }`, `name: "x"`, `name: true`) by name.

    The batching and monitoring protos are not in the tensorflow-serving-api package, and these
    flat files need nothing more than this.
    """
    text = re.sub(r"#.*", "", path.read_text())
    values = {}
    for name, value in re.findall(r"(\w+)\s*\{\s*value\s*:\s*([^\s}]+)\s*\}", text):
        values[name] = int(value)
    for name, value in re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|true|false|-?\d+)", text):
        if name != "value":
            values[name] = (value.strip('"') if value.startswith('"')
                            else {"true": True, "false": False}.get(value, value))
    return values


def metrics_path(config: Path = CONFIG_DIR / CONFIG_FILES["monitoring"]) -> str:
    return read_text_proto_values(config)["path"]


def artifacts_root_of(model_base: Path) -> Path | None:
    """The artifacts folder a model base path lies in (`<root>/tfserving/<model>`), if it has a manifest."""
    root = Path(model_base).resolve().parent.parent
    return root if manifest.manifest_path(root).exists() else None
