"""Nested training state in one safetensors file, saved and restored exactly, without pickle.

A *tree* is made of dicts (``str`` or ``int`` keys, as in optimizer state_dicts), lists and
tuples, whose leaves are torch tensors, numpy arrays or scalars, or JSON scalars (``int``,
``float``, ``bool``, ``str``, ``None``). A training checkpoint is one tree::

    {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
     "step": 1200, "rng": {"torch": torch.get_rng_state(), "numpy": gen.bit_generator.state}}

Tensors and arrays go into the safetensors body, named by their path in the tree
(``optimizer/state/3/exp_avg``; a ``/`` or ``~`` inside a key is escaped as ``~1``/``~0``, as
in JSON Pointer). Everything else goes into the header metadata as one JSON document, one
node per tree node:

    ``{"dict": [[key, node], ...]}``  keys keep their JSON type, so int keys come back as int
    ``{"list": [node, ...]}``  ``{"tuple": [node, ...]}``  ``{"value": scalar}``
    ``{"tensor": name}``  ``{"ndarray": name}``  ``{"npscalar": name}``

A sha256 over that document and every tensor's bytes is stored beside it, so a corrupted
file is refused instead of silently restoring wrong weights. Dict subclasses (a module's
``OrderedDict`` state_dict) come back as plain dicts in the same order.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from worldenv.io import atomic_write

FORMAT = "worldenv-tree"
FORMAT_VERSION = 1

Tree = Any  # dict | list | tuple | torch.Tensor | np.ndarray | np.generic | int | float | bool | str | None

_SCALARS = (bool, int, float, str, type(None))


class StateFileError(ValueError):
    """A state file is truncated, corrupted, or not one written by :func:`save_tree`."""


def save_tree(path: Path, tree: Tree) -> None:
    """Write ``tree`` to ``path`` as one safetensors file; readers see the old file or the new one."""
    tensors: dict[str, torch.Tensor] = {}
    structure = json.dumps(_encode(tree, (), tensors))
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "tree": structure,
        "sha256": _digest(structure, tensors),
    }
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_tree(path: Path, device: str | torch.device = "cpu") -> Tree:
    """Read a tree written by :func:`save_tree`; tensors go to ``device``, numpy arrays stay on the host."""
    path = Path(path)
    try:
        # Read onto the CPU first: the checksum is taken over host bytes.
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except SafetensorError as error:
        raise StateFileError(f"{path}: not a readable safetensors file, truncated or corrupted ({error})") from error
    if metadata.get("format") != FORMAT:
        raise StateFileError(f"{path}: expected a {FORMAT} file written by save_tree, found format {metadata.get('format')!r}")
    if not metadata.get("format_version", "").isdigit() or int(metadata["format_version"]) > FORMAT_VERSION:
        raise StateFileError(
            f"{path}: {FORMAT} format_version {metadata.get('format_version')!r} is not supported "
            f"(this worldenv reads up to {FORMAT_VERSION}); upgrade worldenv"
        )
    structure = metadata.get("tree", "")
    if _digest(structure, tensors) != metadata.get("sha256"):
        raise StateFileError(f"{path}: sha256 mismatch, the file is corrupted")
    used: set[str] = set()
    try:
        tree = _decode(json.loads(structure), tensors, torch.device(device), used)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise StateFileError(f"{path}: malformed tree structure ({error!r})") from error
    if used != set(tensors):
        raise StateFileError(f"{path}: tensors {sorted(set(tensors) - used)} are not referenced by the tree structure")
    return tree


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _where(path: tuple[str, ...]) -> str:
    return "/".join(path) or "<root>"


def _put(tensors: dict[str, torch.Tensor], path: tuple[str, ...], tensor: torch.Tensor) -> str:
    name = "/".join(_escape(p) for p in path)
    if name in tensors:
        # e.g. a dict holding both the key 1 and the key "1".
        raise ValueError(f"two leaves of the tree map to the same tensor name {name!r}")
    if tensor.layout != torch.strided:
        raise TypeError(f"{_where(path)}: {tensor.layout} tensors cannot be saved; convert to dense first")
    # A private contiguous host copy: safetensors refuses views and tensors that share storage
    # (tied weights, optimizer state aliasing parameters), and saving must not race training.
    tensors[name] = tensor.detach().cpu().clone(memory_format=torch.contiguous_format)
    return name


def _from_numpy(array: np.ndarray, path: tuple[str, ...]) -> torch.Tensor:
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{_where(path)}: numpy dtype {array.dtype} cannot be saved (only bool, int, uint, float)")
    # copy(): contiguous, writable, and independent of the caller's array.
    return torch.from_numpy(array.copy(order="C"))


def _encode(node: Tree, path: tuple[str, ...], tensors: dict[str, torch.Tensor]) -> dict:
    if isinstance(node, torch.Tensor):
        return {"tensor": _put(tensors, path, node)}
    if isinstance(node, np.ndarray):
        return {"ndarray": _put(tensors, path, _from_numpy(node, path))}
    if isinstance(node, np.generic):  # before the scalars: np.float64 subclasses float
        return {"npscalar": _put(tensors, path, _from_numpy(np.asarray(node), path))}
    if type(node) in _SCALARS:
        return {"value": node}
    if isinstance(node, dict):
        items = []
        for key, value in node.items():
            if type(key) not in (str, int):
                raise TypeError(f"{_where(path)}: dict key {key!r} is a {type(key).__name__}; only str and int keys can be saved")
            items.append([key, _encode(value, (*path, str(key)), tensors)])
        return {"dict": items}
    if isinstance(node, (list, tuple)):
        kind = "tuple" if isinstance(node, tuple) else "list"
        return {kind: [_encode(value, (*path, str(i)), tensors) for i, value in enumerate(node)]}
    raise TypeError(
        f"{_where(path)}: cannot save a {type(node).__name__} (expected dict, list, tuple, tensor, array or JSON scalar)"
    )


def _decode(node: dict, tensors: dict[str, torch.Tensor], device: torch.device, used: set[str]) -> Tree:
    ((kind, value),) = node.items()
    if kind == "value":
        return value
    if kind == "dict":
        return {key: _decode(child, tensors, device, used) for key, child in value}
    if kind in ("list", "tuple"):
        children = [_decode(child, tensors, device, used) for child in value]
        return tuple(children) if kind == "tuple" else children
    if kind in ("tensor", "ndarray", "npscalar"):
        used.add(value)
        tensor = tensors[value]
        if kind == "tensor":
            return tensor.to(device)
        return tensor.numpy() if kind == "ndarray" else tensor.numpy()[()]
    raise ValueError(f"unknown node kind {kind!r}")


def _digest(structure: str, tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of the structure document and of every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(structure.encode())
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"\0{name}\0{tensor.dtype}\0{list(tensor.shape)}\0".encode())
        # (-1) then a uint8 view: raw bytes of any dtype, bfloat16 and 0-d tensors included
        # (.data: the array's memoryview, the same bytes).
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()
