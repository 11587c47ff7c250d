"""Round trips of training state through worldenv.state_io: exact, typed, and pickle-free."""

import json
import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from worldenv.state_io import StateFileError, load_tree, save_tree

torch.set_num_threads(1)


def _train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 4, generator=generator)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _make() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.Linear(16, 3))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)


def test_adamw_state_round_trip_gives_identical_next_step(tmp_path):
    model, optimizer = _make()
    _train_steps(model, optimizer, steps=3, seed=1)
    path = tmp_path / "train.safetensors"
    save_tree(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 3})

    restored = load_tree(path)
    state = restored["optimizer"]
    assert sorted(state["state"]) == [0, 1, 2, 3]  # int keys stay int
    assert isinstance(state["param_groups"][0]["betas"], tuple)
    assert restored["step"] == 3

    model2, optimizer2 = _make()
    model2.load_state_dict(restored["model"])
    optimizer2.load_state_dict(state)
    _train_steps(model, optimizer, steps=1, seed=2)
    _train_steps(model2, optimizer2, steps=1, seed=2)
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p, q)
    for s, t in zip(optimizer.state.values(), optimizer2.state.values(), strict=True):
        assert all(torch.equal(s[k], t[k]) for k in s)


def test_rng_states_reproduce_the_same_draws(tmp_path):
    torch.manual_seed(123)
    generator = np.random.default_rng(7)
    generator.random(5)
    path = tmp_path / "rng.safetensors"
    save_tree(path, {"torch": torch.get_rng_state(), "numpy": generator.bit_generator.state, "legacy": np.random.get_state()})
    expected_torch, expected_numpy = torch.rand(10), generator.random(10)

    restored = load_tree(path)
    assert restored["torch"].dtype == torch.uint8
    torch.set_rng_state(restored["torch"])
    fresh = np.random.default_rng()
    fresh.bit_generator.state = restored["numpy"]  # 128-bit PCG64 ints survive the JSON
    np.random.set_state(restored["legacy"])
    assert torch.equal(torch.rand(10), expected_torch)
    assert np.array_equal(fresh.random(10), expected_numpy)


def test_dtypes_and_layouts(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tree = {
        "bf16": torch.randn(3, 5).to(torch.bfloat16),
        "bool": torch.tensor([True, False, True]),
        "uint8": torch.arange(256, dtype=torch.uint8),
        "int64": torch.tensor([-(2**62), 0, 2**62]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 7),
        "view": base[1:3],  # shares storage with "transposed"
        "transposed": base.t(),  # non-contiguous
        "np_f32": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)[:, ::2],
        "np_u32": np.arange(4, dtype=np.uint32),
        "np_bool": np.array([[True], [False]]),
        "np_scalar": np.float64(0.1),
    }
    path = tmp_path / "d.safetensors"
    save_tree(path, tree)
    restored = load_tree(path)
    assert list(restored) == list(tree)
    for key, value in tree.items():
        got = restored[key]
        assert type(got) is type(value), key
        if isinstance(value, torch.Tensor):
            assert got.dtype == value.dtype and torch.equal(got, value), key
        else:
            assert got.dtype == value.dtype and np.array_equal(got, value), key


def test_nested_containers_and_scalars(tmp_path):
    tree = {
        "a": [1, 2.5, True, None, "x", (3, [4, (5,)])],
        "b": {"c/d": {"~e": torch.ones(2)}, 7: "int key", "7": "str key"},
        "big": 2**100,
        "floats": [float("inf"), -0.0, 1e-300],
        "empty": {"list": [], "tuple": (), "dict": {}},
    }
    path = tmp_path / "n.safetensors"
    save_tree(path, tree)
    restored = load_tree(path)
    assert torch.equal(restored["b"]["c/d"]["~e"], torch.ones(2))
    restored["b"]["c/d"]["~e"] = tree["b"]["c/d"]["~e"]
    assert restored == tree
    assert type(restored["a"][5]) is tuple and type(restored["a"][5][1][1]) is tuple
    assert type(restored["a"][2]) is bool and math.copysign(1.0, restored["floats"][1]) < 0


def test_tensor_names_are_tree_paths(tmp_path):
    model, optimizer = _make()
    _train_steps(model, optimizer, steps=1, seed=0)
    path = tmp_path / "names.safetensors"
    save_tree(path, {"optimizer": optimizer.state_dict(), "k/x": torch.zeros(1)})
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())
        assert json.loads(f.metadata()["tree"])  # the structure is plain JSON
    assert {"optimizer/state/3/exp_avg", "optimizer/state/0/step", "k~1x"} <= names


def test_unsupported_leaves_and_key_collisions_are_refused(tmp_path):
    with pytest.raises(TypeError, match="opt/x"):
        save_tree(tmp_path / "a.safetensors", {"opt": {"x": object()}})
    with pytest.raises(TypeError, match="dict key"):
        save_tree(tmp_path / "a.safetensors", {(1, 2): 3})
    with pytest.raises(ValueError, match="same tensor name"):
        save_tree(tmp_path / "a.safetensors", {1: torch.zeros(1), "1": torch.zeros(1)})
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("damage", ["truncate", "flip_data", "garbage"])
def test_corrupted_file_is_refused_naming_it(tmp_path, damage, monkeypatch):
    path = tmp_path / "state.safetensors"
    save_tree(path, {"w": torch.arange(1000, dtype=torch.float32), "step": 5})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip_data":
        data[-10] ^= 0xFF
    else:
        data = bytearray(b"\x00" * 64)
    path.write_bytes(bytes(data))
    monkeypatch.setattr(pickle, "load", _no_pickle)
    monkeypatch.setattr(torch, "load", _no_pickle)
    with pytest.raises(StateFileError, match=str(path)):
        load_tree(path)


def _no_pickle(*args, **kwargs):
    raise AssertionError("pickle must never be used")


def test_tensors_load_onto_the_requested_device(tmp_path):
    path = tmp_path / "dev.safetensors"
    save_tree(path, {"t": torch.ones(2), "a": np.ones(2)})
    restored = load_tree(path, device="meta")
    assert restored["t"].device.type == "meta"
    assert isinstance(restored["a"], np.ndarray)
