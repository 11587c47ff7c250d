"""The model bundle: exact round trips, strict loading, clear errors, no pickle."""

import json
import pickle

import pytest
import torch
from torch import nn

from worldenv.checkpoint import CheckpointError, hardware_description, load_bundle, save_bundle, update_bundle

torch.set_num_threads(1)


class Tiny(nn.Module):
    def __init__(self, width: int = 8, tied: bool = True) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, width)
        self.mix = nn.Linear(width, width)
        self.out = nn.Linear(width, 5, bias=False)
        if tied:
            self.out.weight = self.embed.weight  # tied weights share storage
        self.register_buffer("scale", torch.full((width,), 0.5, dtype=torch.bfloat16))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.mix(self.embed(tokens))) * self.scale.float())


class Other(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3))


def _tiny(seed: int, **kwargs) -> Tiny:
    torch.manual_seed(seed)
    return Tiny(**kwargs)


def test_round_trip_gives_identical_outputs(tmp_path):
    model = _tiny(0)
    config = {"width": 8, "tied": True}
    directory = save_bundle(
        tmp_path / "reacher", {"teacher": (model, config)}, {"scene": "reacher", "steps": 10}, card="# Tiny\n"
    )
    bundle = load_bundle(directory)
    assert bundle.components == ["teacher"] and bundle.class_name("teacher") == "Tiny"
    assert bundle.config("teacher") == config
    assert bundle.metadata == {"scene": "reacher", "steps": 10} and bundle.card == "# Tiny\n"
    assert bundle.path == directory

    restored = bundle.load_into("teacher", _tiny(1, **bundle.config("teacher")))
    tokens = torch.tensor([[0, 1, 2, 3, 4]])
    assert torch.equal(restored(tokens), model(tokens))
    assert restored.out.weight is restored.embed.weight  # still tied after loading
    assert bundle.state_dict("teacher")["scale"].dtype == torch.bfloat16
    described = json.loads((directory / "bundle.json").read_text())
    assert described["format"] == "worldenv-bundle" and described["format_version"] == 1
    assert described["components"]["teacher"]["tensors"]["mix.weight"] == {"shape": [8, 8], "dtype": "float32"}


def test_update_keeps_existing_components_and_merges_metadata(tmp_path):
    directory = tmp_path / "b"
    tokenizer = _tiny(0, width=4)
    update_bundle(directory, {"tokenizer": (tokenizer, {"width": 4})}, {"scene": "cartpole", "tokenizer_steps": 5})
    teacher = _tiny(2)
    update_bundle(directory, {"teacher": (teacher, {"width": 8})}, {"teacher_steps": 7}, card="card")
    bundle = load_bundle(directory)
    assert sorted(bundle.components) == ["teacher", "tokenizer"]
    assert bundle.metadata == {"scene": "cartpole", "tokenizer_steps": 5, "teacher_steps": 7}
    for name, model in [("tokenizer", tokenizer), ("teacher", teacher)]:
        state = bundle.state_dict(name)
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    update_bundle(directory, metadata={"note": "x"})
    assert load_bundle(directory).card == "card"  # not given: kept


def test_shape_mismatch_names_bundle_component_and_key(tmp_path):
    directory = save_bundle(tmp_path / "b", {"teacher": (_tiny(0), {"width": 8})}, {})
    with pytest.raises(CheckpointError) as error:
        load_bundle(directory).load_into("teacher", Tiny(width=16))
    message = str(error.value)
    # The module's own buffer comes first in its state_dict, so it is the first mismatch.
    assert str(directory) in message and "'teacher'" in message and "'scale'" in message
    assert "bundle has shape (8,)" in message and "module expects (16,)" in message


def test_wrong_class_and_unknown_component_are_refused(tmp_path):
    bundle = load_bundle(save_bundle(tmp_path / "b", {"probe": (_tiny(0), {})}, {}))
    with pytest.raises(CheckpointError, match="holds a Tiny, not a Other"):
        bundle.load_into("probe", Other())
    with pytest.raises(CheckpointError, match="no component 'teacher'"):
        bundle.config("teacher")


def test_truncated_or_corrupted_weights_are_refused_naming_the_file(tmp_path):
    directory = save_bundle(tmp_path / "b", {"teacher": (_tiny(0), {})}, {})
    file = directory / "teacher.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[:-40])
    with pytest.raises(CheckpointError, match=f"{file}.*truncated"):
        load_bundle(directory)
    file.write_bytes(data[:-40] + bytes(40))  # same size, wrong bytes
    with pytest.raises(CheckpointError, match=f"{file}.*sha256"):
        load_bundle(directory)
    file.write_bytes(data)
    bundle = load_bundle(directory)
    file.write_bytes(data[:-40] + bytes(40))  # damaged after loading: reading the weights checks again
    with pytest.raises(CheckpointError, match=f"{file}.*sha256"):
        bundle.load_into("teacher", _tiny(0))
    file.unlink()
    with pytest.raises(CheckpointError, match=f"{file}: missing"):
        load_bundle(directory)


def test_missing_index_and_newer_format_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="bundle.json: missing"):
        load_bundle(tmp_path)
    directory = save_bundle(tmp_path / "b", {"teacher": (_tiny(0), {})}, {})
    index = directory / "bundle.json"
    raw = json.loads(index.read_text())
    index.write_text(json.dumps({**raw, "format_version": 2}))
    with pytest.raises(CheckpointError, match="newer format needs a newer"):
        load_bundle(directory)
    index.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_bundle(directory)


def _edit_json(path, edit) -> None:
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda raw: raw["components"]["teacher"].update(config={}),
            r"bundle.json: components.teacher.config.model: missing; expected a mapping of BackboneConfig fields",
        ),
        (
            lambda raw: raw["components"]["teacher"].update(config="tiny"),
            r"bundle.json: components.teacher.config: expected the component's config \(a JSON object\), found str 'tiny'",
        ),
        (
            lambda raw: raw["components"]["tokenizer"]["config"]["model"].update(channels="wide"),
            r"bundle.json: components.tokenizer.config.model.channels: expected a list, got 'wide'",
        ),
        (
            lambda raw: raw["components"]["contexts"].update(config={"count": 6}),
            r"bundle.json: components.contexts.config.length: missing; expected keys \['count', 'length', 'size', 'action_dim'\]",
        ),
        (
            lambda raw: raw["components"]["teacher"].pop("sha256"),
            r"bundle.json: components.teacher.sha256: expected the file's sha256 \(a hex string\), found nothing",
        ),
    ],
    ids=["empty-config", "string-config", "bad-model-field", "contexts-config", "no-sha256"],
)
def test_a_replaced_config_is_refused_naming_the_file_key_and_expectation(reacher_dream, tmp_path, edit, message):
    import shutil

    from worldenv.envs import DiffusionWorldEnv

    broken = tmp_path / "broken"
    shutil.copytree(reacher_dream, broken)
    _edit_json(broken / "bundle.json", edit)
    with pytest.raises(CheckpointError, match=f"{broken}/{message}"):
        DiffusionWorldEnv(checkpoint=broken)


def test_missing_metadata_or_scene_is_refused_naming_the_file(reacher_dream, tmp_path):
    import shutil

    from worldenv.envs import DiffusionWorldEnv

    broken = tmp_path / "broken"
    shutil.copytree(reacher_dream, broken)
    (broken / "metadata.json").write_text("{}")
    with pytest.raises(CheckpointError, match=f'{broken}/metadata.json: "scene": expected the name of the scene'):
        DiffusionWorldEnv(checkpoint=broken)
    (broken / "metadata.json").unlink()
    with pytest.raises(CheckpointError, match=f"{broken}/metadata.json: missing; expected the bundle's metadata"):
        DiffusionWorldEnv(checkpoint=broken)


def test_a_damaged_teacher_is_refused_while_a_student_is_served(reacher_dream, tmp_path):
    """Loading checks every component, not only those the dream uses."""
    import shutil

    from worldenv.envs import DiffusionWorldEnv
    from worldenv.world_model import load_backbone

    bundle = tmp_path / "bundle"
    shutil.copytree(reacher_dream, bundle)
    student = load_backbone(load_bundle(bundle))
    update_bundle(bundle, {"student_consistency": (student, load_bundle(bundle).config("teacher"))})
    DiffusionWorldEnv(checkpoint=bundle, model="student_consistency").close()
    teacher = bundle / "teacher.safetensors"
    data = bytearray(teacher.read_bytes())
    data[len(data) // 2] ^= 0x01
    teacher.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{teacher}: sha256 mismatch"):
        DiffusionWorldEnv(checkpoint=bundle, model="student_consistency")


def test_updating_a_read_only_bundle_is_refused_naming_it(tmp_path, monkeypatch):
    import os

    directory = save_bundle(tmp_path / "b", {"teacher": (_tiny(0), {})}, {"scene": "reacher"})
    access = os.access
    # Tests run as root, whom chmod does not stop: os.access is what a read-only directory answers.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: path != directory and access(path, mode, **kw))
    with pytest.raises(CheckpointError, match=f"{directory}: cannot update the bundle, {directory} is not writable"):
        update_bundle(directory, metadata={"note": "x"})
    assert load_bundle(directory).metadata == {"scene": "reacher"}


def test_atomic_replace_leaves_no_temporary_directories(tmp_path):
    save_bundle(tmp_path / "b", {"teacher": (_tiny(0), {})}, {"run": 1})
    save_bundle(tmp_path / "b", {"probe": (_tiny(1), {})}, {"run": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    bundle = load_bundle(tmp_path / "b")
    assert bundle.components == ["probe"] and bundle.metadata == {"run": 2}
    assert not (tmp_path / "b" / "teacher.safetensors").exists()

    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        save_bundle(tmp_path / "b", {"teacher": (_tiny(0), {"bad": object()})}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # failed write: old bundle intact
    assert load_bundle(tmp_path / "b").metadata == {"run": 2}


def test_refuses_to_replace_a_directory_that_is_not_a_bundle(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="not a worldenv bundle"):
        save_bundle(tmp_path / "data", {"teacher": (_tiny(0), {})}, {})
    assert (tmp_path / "data" / "keep.txt").read_text() == "precious"


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model = _tiny(0)
    directory = save_bundle(tmp_path / "b", {"teacher": (model, {})}, {})
    torch.save(model.state_dict(), directory / "teacher.pt")  # a stray pickle beside the weights

    def refuse(*args, **kwargs):
        raise AssertionError("pickle must never be used")

    for target, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")]:
        monkeypatch.setattr(target, name, refuse)
    restored = load_bundle(directory).load_into("teacher", _tiny(3))
    assert all(torch.equal(a, b) for a, b in zip(restored.state_dict().values(), model.state_dict().values()))


def test_hardware_description_names_cpu_and_torch():
    text = hardware_description()
    assert "cores" in text and torch.__version__ in text
