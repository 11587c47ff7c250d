"""Presets compose: ``base:`` chains, merged key by key, with errors that name the file."""

import pytest
import yaml

from worldenv import config as configs
from worldenv.config import ConfigError, merge
from worldenv.training.loop import TrainConfig


def test_merge_lays_overrides_over_nested_sections():
    base = {"data": {"path": "a", "held_out_episodes": 5}, "train": {"lr": 1.0}}
    assert merge(base, {"data": {"extra_paths": ["b"]}, "train": {"lr": 2.0}}) == {
        "data": {"path": "a", "held_out_episodes": 5, "extra_paths": ["b"]},
        "train": {"lr": 2.0},
    }
    assert base == {"data": {"path": "a", "held_out_episodes": 5}, "train": {"lr": 1.0}}


def test_a_preset_states_only_what_it_changes_over_its_base(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "root.yaml").write_text(yaml.safe_dump({"run": {"steps": 10, "lr": 0.5, "batch": 4}}))
    (tmp_path / "middle.yaml").write_text(yaml.safe_dump({"base": "presets/root.yaml", "run": {"lr": 0.1}}))
    (tmp_path / "leaf.yaml").write_text(yaml.safe_dump({"base": "middle.yaml", "run": {"batch": 8}}))
    assert configs.read_document(tmp_path / "leaf.yaml") == {"run": {"steps": 10, "lr": 0.1, "batch": 8}}
    built = configs.load(tmp_path / "leaf.yaml", "run", TrainConfig)
    assert (built.steps, built.lr, built.batch) == (10, 0.1, 8)


def test_a_base_chain_that_loops_or_is_missing_names_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"base": "b.yaml"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"base": "a.yaml"}))
    with pytest.raises(ConfigError, match="leads back to itself"):
        configs.read_document(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"base": "nowhere.yaml"}))
    with pytest.raises(ConfigError, match="nowhere.yaml: cannot read config"):
        configs.read_document(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"base": 3}))
    with pytest.raises(ConfigError, match="d.yaml: base: expected the path of another YAML file, got 3"):
        configs.read_document(tmp_path / "d.yaml")
