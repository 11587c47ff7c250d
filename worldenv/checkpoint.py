"""The model bundle: a self-describing directory of safetensors weights with their configs.

Layout::

    bundle.json              format, versions, and per component: class, config, file bytes,
                             sha256, and every tensor's name, shape and dtype
    <component>.safetensors  one per component ("tokenizer", "teacher", "probe", ...); its header
                             repeats class and config (k-diffusion's convert_for_inference style)
    metadata.json            free dict: scene, dataset sha256, command, steps, time, hardware, metrics
    card.md                  optional model card

A bundle is written whole (into a hidden sibling directory, then renamed into place), so a
killed run leaves the previous bundle or the new one. Loading reads only JSON and
safetensors: a ``.pt`` or pickle file is never opened. Loading checks every component's
sha256, not only the ones a caller will use (about 25 ms for the 28 MB reacher bundle), and
reading a component's weights checks it again, so a file damaged after loading is refused too.
"""

import json
import logging
import os
import platform
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

import worldenv
from worldenv import config as configs
from worldenv.io import atomic_write, atomic_write_json, sha256_file
from worldenv.scenes import directory_name, scene_info

logger = logging.getLogger(__name__)

FORMAT = "worldenv-bundle"
FORMAT_VERSION = 1
BUNDLE_JSON = "bundle.json"
METADATA_JSON = "metadata.json"
CARD = "card.md"
_NAME = re.compile(r"[A-Za-z0-9_-]+")

# What each component's entry in bundle.json holds: key -> (JSON type, what it means).
_RECORD = {
    "class": (str, "the module's class name (a string)"),
    "config": (dict, "the component's config (a JSON object)"),
    "bytes": (int, "the file's size in bytes (an integer)"),
    "sha256": (str, "the file's sha256 (a hex string)"),
    "tensors": (dict, "a table of tensor name -> {shape, dtype} (a JSON object)"),
}

ConfigT = TypeVar("ConfigT")
Components = dict[str, tuple[nn.Module, dict]]  # name -> (module, its config as a JSON-able dict)


class CheckpointError(RuntimeError):
    """A bundle is missing, damaged, from a newer worldenv, or does not fit the module asked for."""


@dataclass
class Bundle:
    """A bundle read by :func:`load_bundle`; weights are read from disk only when asked for."""

    path: Path
    metadata: dict
    card: str | None
    records: dict[str, dict]  # component -> its entry in bundle.json

    @property
    def components(self) -> list[str]:
        return list(self.records)

    def _record(self, name: str) -> dict:
        if name not in self.records:
            raise CheckpointError(f"{self.path}: no component {name!r} in the bundle (it has {self.components})")
        return self.records[name]

    def config(self, name: str, *required: str) -> dict:
        """The component's config; a missing ``required`` key is refused naming the file and the key."""
        config = self._record(name)["config"]
        missing = [key for key in required if key not in config]
        if missing:
            raise CheckpointError(
                f"{self.path / BUNDLE_JSON}: components.{name}.config.{missing[0]}: missing; "
                f"expected keys {list(required)} (found {sorted(config)})"
            )
        return config

    def model_config(self, name: str, cls: type[ConfigT]) -> ConfigT:
        """The component's ``config["model"]`` as dataclass ``cls`` (the network's shape)."""
        where = f"{self.path / BUNDLE_JSON}: components.{name}.config.model"
        if "model" not in self.config(name):
            raise CheckpointError(f"{where}: missing; expected a mapping of {cls.__name__} fields")
        try:
            return configs.build(cls, self.config(name)["model"], where)
        except configs.ConfigError as error:  # a damaged bundle, not a user's preset
            raise CheckpointError(str(error)) from None

    @property
    def scene(self) -> str:
        """The scene the bundle models (metadata.json's "scene")."""
        scene = self.metadata.get("scene")
        if not isinstance(scene, str):
            raise CheckpointError(
                f'{self.path / METADATA_JSON}: "scene": expected the name of the scene the bundle models, found {scene!r}'
            )
        return scene

    def class_name(self, name: str) -> str:
        return self._record(name)["class"]

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        """The component's tensors on the CPU, after checking the file against its sha256."""
        record, file = self._record(name), self.path / f"{name}.safetensors"
        if sha256_file(file) != record["sha256"]:
            raise CheckpointError(f"{file}: sha256 mismatch, the file is corrupted")
        with safe_open(str(file), framework="pt", device="cpu") as f:
            return {key: f.get_tensor(key) for key in record["tensors"]}

    def load_into(self, name: str, module: nn.Module) -> nn.Module:
        """Load the component's weights into ``module`` after checking its class, tensor names and shapes."""
        where = f"{self.path}: component {name!r}"
        expected = self.class_name(name)
        if type(module).__name__ != expected:
            raise CheckpointError(f"{where} holds a {expected}, not a {type(module).__name__}")
        saved = {k: tuple(spec["shape"]) for k, spec in self._record(name)["tensors"].items()}
        wanted = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        # Module order first, so "first" means what a reader of the module's code expects.
        for key in [*wanted, *(k for k in saved if k not in wanted)]:
            if saved.get(key) != wanted.get(key):
                raise CheckpointError(
                    f"{where}: first mismatch at tensor {key!r}: the bundle has shape {saved.get(key, 'nothing')}, "
                    f"the module expects {wanted.get(key, 'nothing')}"
                )
        module.load_state_dict(self.state_dict(name), strict=True)
        return module


def save_bundle(directory: str | Path, components: Components, metadata: dict, card: str | None = None) -> Path:
    """Write a new bundle (replacing any bundle at ``directory``) from ``name -> (module, config)``."""
    directory = Path(directory)
    _commit(directory, lambda tmp: _fill(tmp, components, {}, metadata, card))
    logger.info("saved bundle %s with components %s", directory, sorted(components))
    return directory


def update_bundle(
    directory: str | Path, components: Components | None = None, metadata: dict | None = None, card: str | None = None
) -> Path:
    """Add or replace components and merge ``metadata`` into a bundle (created if missing), keeping the rest.

    Used when the tokenizer is trained first and the teacher later into the same bundle."""
    directory, components, metadata = Path(directory), components or {}, metadata or {}
    if not (directory / BUNDLE_JSON).exists():
        return save_bundle(directory, components, metadata, card)
    check_writable(directory)
    old = load_bundle(directory)
    kept = {name: (old.path / f"{name}.safetensors", r) for name, r in old.records.items() if name not in components}
    merged, new_card = {**old.metadata, **metadata}, old.card if card is None else card
    _commit(directory, lambda tmp: _fill(tmp, components, kept, merged, new_card))
    logger.info("updated bundle %s: wrote %s, kept %s", directory, sorted(components), sorted(kept))
    return directory


def load_bundle(directory: str | Path) -> Bundle:
    """Read and check a bundle's descriptions and file headers; weights load lazily."""
    directory = Path(directory)
    index = directory / BUNDLE_JSON
    if not index.is_file():
        raise CheckpointError(f"{index}: missing; is {directory} a bundle written by worldenv (save_bundle)?")
    raw = _read_json(index)
    found, version, records = raw.get("format"), raw.get("format_version"), raw.get("components")
    if found != FORMAT or not isinstance(version, int) or version > FORMAT_VERSION or not isinstance(records, dict):
        raise CheckpointError(
            f"{index}: expected format {FORMAT!r}, format_version <= {FORMAT_VERSION} and a components table; found "
            f"{found!r} version {version!r} (this is worldenv {worldenv.__version__}; a newer format needs a newer one)"
        )
    for name, record in records.items():
        _check_record(index, name, record)
        try:
            _check_file(directory, name, record)
        except (KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{index}: malformed entry for component {name!r} ({error!r})") from error
    if not (directory / METADATA_JSON).is_file():  # every bundle save_bundle writes has one: it names the scene
        raise CheckpointError(
            f"{directory / METADATA_JSON}: missing; expected the bundle's metadata (its scene, "
            "training runs, evaluations) beside bundle.json"
        )
    card = (directory / CARD).read_text() if (directory / CARD).is_file() else None
    return Bundle(path=directory, metadata=_read_json(directory / METADATA_JSON), card=card, records=records)


def check_writable(directory: str | Path) -> None:
    """Refuse, before any work, a bundle that ``update_bundle`` could not replace: it writes a
    sibling directory beside it, renames both, and deletes the old one's files."""
    directory = Path(directory)
    for place in (directory.parent, directory):
        if not os.access(place, os.W_OK | os.X_OK):
            raise CheckpointError(
                f"{directory}: cannot update the bundle, {place} is not writable; expected a "
                "writable bundle directory and parent (copy the bundle elsewhere to update it)"
            )


def hardware_description() -> str:
    """One line naming the CPU, the cores this process may use, torch, and the CUDA device if any."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    cpu = models[0] if models else platform.processor() or platform.machine()
    # The affinity mask, not the machine: containers and taskset limit what a run really had.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [f"{cpu} ({cores} cores)", f"torch {torch.__version__}"]
    if torch.cuda.is_available():
        parts.append(f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})")
    return ", ".join(parts)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _check_record(index: Path, name: str, record) -> None:
    """Refuse an entry of bundle.json whose keys are missing or of the wrong type, naming the key."""
    if not isinstance(record, dict):
        raise CheckpointError(
            f"{index}: components.{name}: expected a JSON object with keys {list(_RECORD)}, found {type(record).__name__}"
        )
    for key, (kind, what) in _RECORD.items():
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            found = "nothing" if key not in record else f"{type(value).__name__} {_clip(repr(value))}"
            raise CheckpointError(f"{index}: components.{name}.{key}: expected {what}, found {found}")


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_file(directory: Path, name: str, record: dict) -> None:
    """Refuse a missing, truncated, corrupted or foreign component file before any weights are read."""
    file = directory / f"{name}.safetensors"
    if not _NAME.fullmatch(name) or not file.is_file():
        raise CheckpointError(f"{file}: missing (listed in {directory / BUNDLE_JSON})")
    if file.stat().st_size != record["bytes"]:
        raise CheckpointError(f"{file}: {file.stat().st_size} bytes, expected {record['bytes']} (truncated?)")
    # Every component, used or not: a damaged teacher is found while a student is served.
    if sha256_file(file) != record["sha256"]:
        raise CheckpointError(f"{file}: sha256 mismatch, the file is corrupted")
    try:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            shapes = {key: list(f.get_slice(key).get_shape()) for key in f.keys()}
    except SafetensorError as error:
        raise CheckpointError(f"{file}: not a readable safetensors file ({error})") from error
    if shapes != {key: spec["shape"] for key, spec in record["tensors"].items()}:
        raise CheckpointError(f"{file}: tensors disagree with {directory / BUNDLE_JSON}")


def _fill(tmp: Path, components: Components, kept: dict[str, tuple[Path, dict]], metadata: dict, card: str | None) -> None:
    """Write every file of a bundle into the empty directory ``tmp``; ``kept``: name -> (file to copy, its record)."""
    records: dict[str, dict] = {}
    for name, (source, record) in kept.items():
        shutil.copyfile(source, tmp / f"{name}.safetensors")
        records[name] = record
    for name, (module, config) in components.items():
        if not _NAME.fullmatch(name):
            raise CheckpointError(f"component name {name!r} must match {_NAME.pattern} (it names a file)")
        records[name] = _write_component(tmp / f"{name}.safetensors", module, config)
    _to_json(metadata, "metadata")  # fail with a clear message before anything is written
    atomic_write_json(tmp / METADATA_JSON, metadata)
    if card is not None:
        atomic_write(tmp / CARD, lambda path: path.write_text(card))
    index = {"format": FORMAT, "format_version": FORMAT_VERSION, "worldenv": worldenv.__version__, "torch": torch.__version__}
    atomic_write_json(tmp / BUNDLE_JSON, {**index, "components": records})


def _write_component(file: Path, module: nn.Module, config: dict) -> dict:
    # Private contiguous copies: safetensors refuses tied (shared-storage) weights and views.
    tensors = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in module.state_dict().items()}
    config_json = _to_json(config, f"config of {file.stem}")
    header = {"format": FORMAT, "component": file.stem, "class": type(module).__name__, "config": config_json}
    atomic_write(file, lambda path: save_file(tensors, str(path), metadata=header))
    specs = {k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")} for k, v in tensors.items()}
    size, digest = file.stat().st_size, sha256_file(file)
    return {"class": header["class"], "config": json.loads(config_json), "bytes": size, "sha256": digest, "tensors": specs}


def _to_json(data: dict, what: str) -> str:
    try:
        # NaN is allowed (Python reads it back): a NaN metric must not lose a trained model.
        return json.dumps(data, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{what} is not JSON-serialisable ({error})") from error


def _commit(directory: Path, fill: Callable[[Path], None]) -> None:
    """Fill a hidden sibling directory, then swap it in for ``directory`` (old aside, new in, old deleted)."""
    if directory.exists() and not (directory / BUNDLE_JSON).is_file() and any(directory.iterdir()):
        raise CheckpointError(f"{directory}: exists and is not a worldenv bundle; refusing to replace it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    tmp = directory.with_name(f".{directory.name}.{token}.tmp")
    old = directory.with_name(f".{directory.name}.{token}.old")
    tmp.mkdir()  # not mkdtemp: its 0700 mode would stick to the published bundle
    try:
        fill(tmp)
        if directory.exists():
            os.rename(directory, old)
        try:
            os.rename(tmp, directory)
        except OSError:
            if old.exists():  # put the previous bundle back
                os.rename(old, directory)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


CHECKPOINTS_VARIABLE = "WORLDENV_CHECKPOINTS"


def shipped_checkpoint(scene: str) -> Path:
    """The checkpoint shipped for ``scene``: under ``$WORLDENV_CHECKPOINTS`` if set, else in
    the ``checkpoints/`` directory beside the installed package (not the working directory)."""
    root = os.environ.get(CHECKPOINTS_VARIABLE)
    base = Path(root) if root else Path(worldenv.__file__).resolve().parent.parent / "checkpoints"
    path = base / directory_name(scene_info(scene).name)
    if not path.is_dir():
        raise CheckpointError(
            f"no shipped checkpoint for scene {scene!r} at {path}; pass checkpoint=DIR (a bundle made by "
            f"`worldenv train`) or set {CHECKPOINTS_VARIABLE}"
        )
    return path
