"""The recipe table end to end on a tiny bundle: variants trained for one CPU budget,
scored, tabulated; and the levers they switch (context corruption, motion weights,
push data, the CPU budget)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from dream_bundles import tiny_trained_bundle

from worldenv.config import ConfigError
from worldenv.data.collect import CollectConfig, collect
from worldenv.data.policies import make_policy
from worldenv.recipes.table import load_table, variant_teacher_section
from worldenv.scenes import make_scene
from worldenv.training.loop import TrainConfig, learning_rate
from worldenv.training.teacher_task import motion_weights


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A tiny trained bundle (tokenizer, teacher, probe) and the preset that made it."""
    root = tmp_path_factory.mktemp("recipes")
    tiny_trained_bundle(root, steps_per_episode=16, action_history=2)
    collect(
        CollectConfig(scene="reacher", episodes=1, steps_per_episode=16, shard_size=1, policy="push", seed=5),
        root / "push",
        progress=False,
    )
    from worldenv.cli import main

    assert main(["contexts", "--checkpoint", str(root / "bundle"), "--count", "2", "--length", "4"]) == 0
    return root


def _table(root, variants: dict) -> Path:
    table = {
        "preset": str(root / "tiny.yaml"),
        "start": str(root / "bundle"),
        "out": str(root / "variants"),
        "results": str(root / "results"),
        "budget_cpu_minutes": 0.02,
        "threads": 1,
        "train": {"steps": 1000, "log_every": 1, "checkpoint_every": 3},
        "score": {"episodes": 1, "horizon": 10, "sampling_steps": 1, "gain_starts": 1, "gain_steps": [1, 3]},
        "variants": variants,
    }
    path = root / "table.yaml"
    path.write_text(yaml.safe_dump(table))
    return path


def test_recipe_table_trains_scores_and_tabulates_every_variant(start):
    from worldenv.cli import main

    variants = {
        "today": {},
        "levers": {"context_corruption": 0.7, "motion_weight": 2.0, "data": {"extra_paths": [str(start / "push")]}},
    }
    path = _table(start, variants)
    assert main(["recipes", "--table", str(path), "--no-progress"]) == 0
    for name in variants:
        row = json.loads((start / "results" / f"{name}.json").read_text())
        assert row["date"] and row["machine"]  # where and when the row was measured
        cpu = row["training"]["cpu_seconds"]
        assert 1.2 <= cpu < 1.2 + 30, cpu  # stopped by the budget, not by the 1000 steps
        assert row["training"]["steps"] < 1000
        assert set(row["gains"]) == {"1", "3"} and set(row["gains"]["3"]) >= {"joint_angles", "fingertip"}
        assert row["one_step"]["copy_last"] > 0 and row["one_step"]["ratio"] == pytest.approx(
            row["one_step"]["model"] / row["one_step"]["copy_last"]
        )
        horizons = row["eval"]["horizons"]
        assert set(horizons) == {"1", "5", "10"} and 0 < horizons["10"]["fade"]
        assert horizons["5"]["psnr_margin"] == pytest.approx(horizons["5"]["psnr"] - horizons["5"]["psnr_copy"])
        preset = yaml.safe_load((start / "variants" / name / "teacher.yaml").read_text())["teacher"]
        assert preset["init_from"] == str(start / "bundle") and preset["train"]["budget_cpu_minutes"] == 0.02
    assert yaml.safe_load((start / "variants" / "levers" / "teacher.yaml").read_text())["teacher"]["context_corruption"] == 0.7
    table = (start / "results" / "table.md").read_text()
    assert "| start |" in table and "| today |" in table and "| levers |" in table and "gain joint_angles @3" in table
    start_row = json.loads((start / "results" / "start.json").read_text())
    assert start_row["bundle"] == str(start / "bundle") and start_row["training"]["steps"] == 0
    today = json.loads((start / "results" / "today.json").read_text())["training"]
    assert today["campaign_cpu_hours"] == pytest.approx(start_row["training"]["campaign_cpu_hours"] + today["cpu_seconds"] / 3600)
    assert (start / "results" / "table.png").stat().st_size > 5000
    # Done rows are kept: the same command only redraws the table.
    before = (start / "results" / "today.json").read_text()
    assert main(["recipes", "--table", str(path), "--no-progress"]) == 0
    assert (start / "results" / "today.json").read_text() == before


def test_a_bad_variant_is_refused_by_name_before_any_work(start, tmp_path):
    from worldenv.recipes.table import prepare_variant

    path = _table(start, {"typo": {"context_corruptoin": 0.5}})
    table = load_table(path)
    with pytest.raises(ConfigError, match=r"variants.typo: unknown key 'context_corruptoin'"):
        prepare_variant(table, "typo")
    with pytest.raises(ConfigError, match=r"unknown variant 'nope'; the table has \['typo'\]"):
        variant_teacher_section(table, "nope")
    bad = _table(start, {"x": {"context_corruption": 1.5}})
    with pytest.raises(ConfigError, match=r"context_corruption: expected a level in \[0, 1\), got 1.5"):
        prepare_variant(load_table(bad), "x")
    (tmp_path / "empty.yaml").write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "variants": {}}))
    with pytest.raises(ConfigError, match="variants: expected at least one variant"):
        load_table(tmp_path / "empty.yaml")


def test_the_learning_rate_follows_the_cpu_budget():
    config = TrainConfig(steps=100000, lr=1.0, warmup=10, budget_cpu_minutes=1.0)
    assert learning_rate(config, 5, cpu_seconds=0.0) == pytest.approx(0.6)  # warm-up is in steps
    assert learning_rate(config, 500, cpu_seconds=0.0) == pytest.approx(1.0)
    assert learning_rate(config, 500, cpu_seconds=30.0) == pytest.approx(0.55)
    assert learning_rate(config, 500, cpu_seconds=60.0) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="budget_cpu_minutes: expected a positive number"):
        TrainConfig(budget_cpu_minutes=0.0).validate()


def test_motion_weights_favour_the_tokens_that_change():
    x0 = torch.zeros(1, 3, 4, 2)
    x0[0, 1, 2] = 1.0  # token 2 changes into frame 1 and back in frame 2
    weights = motion_weights(x0, 3.0)
    assert weights.shape == (1, 3, 4)
    assert weights[0, 1, 2] > weights[0, 1, 0] == 1.0
    assert weights[0, 2, 2] == weights[0, 1, 2]
    assert torch.equal(motion_weights(x0, 0.0), torch.ones(1, 3, 4))


def test_push_holds_each_action_for_runs_of_steps():
    scene = make_scene("reacher")
    policy = make_policy("push")
    policy.reset(scene, np.random.default_rng(0))
    actions = np.array([policy(scene) for _ in range(400)])
    scene.close()
    assert actions.shape == (400, 2) and np.abs(actions).max() <= 1.0
    changes = (np.diff(actions, axis=0) != 0).mean()
    assert changes < 0.3  # white noise changes every step
    assert (np.abs(actions) == 1.0).mean() > 0.3  # often at a bound
    runs = np.diff(np.flatnonzero(np.diff(actions[:, 0]) != 0))
    assert runs.max() >= 10


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[1] / "configs" / "recipes").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_recipe_table_builds(path, monkeypatch):
    """Each variant of each table in configs/recipes/ is a valid teacher config."""
    from worldenv import config as configs
    from worldenv.training.teacher_task import TeacherTrainingConfig

    monkeypatch.chdir(path.parents[2])
    table = load_table(path)
    for name in table.variants:
        configs.build(TeacherTrainingConfig, variant_teacher_section(table, name), f"variants.{name}")


def test_own_rollouts_replace_the_last_context_frames_with_the_models_own(start):
    """``own_rollout_frames``: in the rows drawn, the frames before the last are the
    model's one-evaluation predictions, made one after another; other rows and frames
    keep the data, and the loss still trains."""
    from worldenv import config as configs
    from worldenv.training.teacher_task import TeacherTask, TeacherTrainingConfig

    task = TeacherTask(
        configs.load(
            start / "tiny.yaml", "teacher", TeacherTrainingConfig, {"own_rollout_frames": 2, "run": str(start / "rollout-run")}
        )
    )
    data, _ = task.windows.draw(4, torch.Generator().manual_seed(0), torch.device("cpu"))
    rows = torch.tensor([True, False, True, False])
    rolled = task._roll_out(task.model, data, rows, torch.Generator().manual_seed(1))
    L = data.x0.shape[1]
    changed = (rolled != data.x0).flatten(2).any(-1)  # (B, L)
    assert changed[~rows].sum() == 0
    assert changed[rows][:, L - 3 : L - 1].all() and not changed[rows][:, : L - 3].any() and not changed[rows][:, -1].any()
    loss, metrics = task.loss(task.model, 4, torch.Generator().manual_seed(2))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in metrics.values())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.model.parameters())


def test_own_rollouts_with_long_term_memory_are_refused_by_name():
    """The rollout dreams from a cache primed with the window's consecutive frames; a memory
    sequence's sinks and memory frames are not."""
    from worldenv.nn.backbone import BackboneConfig
    from worldenv.training.teacher_task import TeacherTrainingConfig

    config = TeacherTrainingConfig(data=None, bundle="b", run="r", model=BackboneConfig(memory_frames=2), own_rollout_frames=2)
    with pytest.raises(ConfigError, match="own_rollout_frames: not supported with long-term memory"):
        config.validate()


def test_push_gains_are_read_per_quantity_and_per_entry(monkeypatch):
    """A dream whose shoulder follows MuJoCo and whose elbow stays still has a joint gain
    of about a half, and its entries' gains say which joint is at fault."""
    from worldenv.eval import action_response

    steps = np.arange(4)[None, :, None]

    def fake_responses(dream, truth, probe, scene, action, starts, context, count):
        real = action * 0.1 * np.concatenate([steps, steps], axis=-1).repeat(2, 0)  # (2 starts, 4, 2)
        dreamed = real.copy()
        dreamed[..., 1] = 0.0
        tip = action * 0.01 * np.concatenate([steps, steps], axis=-1).repeat(2, 0)
        return {"mujoco": {"joint_angles": real, "fingertip": tip}, "dream": {"joint_angles": dreamed, "fingertip": tip}}, {}

    monkeypatch.setattr(action_response, "responses", fake_responses)
    gains = action_response.push_gains(None, None, None, "reacher", (1.0, -1.0), 2, 4, (3,))
    assert gains[3]["joint_angles"] == pytest.approx(0.5)
    assert gains[3]["joint_angles[0]"] == pytest.approx(1.0) and gains[3]["joint_angles[1]"] == 0.0
    assert gains[3]["fingertip"] == pytest.approx(1.0)


def test_action_dropout_zeroes_every_action_of_the_windows_drawn(start):
    """``action_dropout``: the windows drawn see the zero action (their own and the history
    before them), the condition action guidance reads as 'no action'; the others keep theirs."""
    from worldenv import config as configs
    from worldenv.training.teacher_task import TeacherTask, TeacherTrainingConfig, without_actions

    overrides = {"action_dropout": 0.5, "run": str(start / "dropout-run")}
    section = configs.read_document(start / "tiny.yaml")["teacher"]
    task = TeacherTask(configs.build(TeacherTrainingConfig, configs.merge(section, overrides), "teacher"))
    data, _ = task.windows.draw(4, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert data.past_actions is not None and data.past_actions.abs().sum() > 0 and data.actions.abs().sum() > 0
    rows = torch.tensor([True, False, False, True])
    dropped = without_actions(data, rows)
    assert dropped.actions[rows].abs().sum() == 0 and dropped.past_actions[rows].abs().sum() == 0
    assert torch.equal(dropped.actions[~rows], data.actions[~rows])
    assert torch.equal(dropped.past_actions[~rows], data.past_actions[~rows])
    assert torch.equal(dropped.x0, data.x0)
    loss, _ = task.loss(task.model, 4, torch.Generator().manual_seed(2))
    loss.backward()
    assert torch.isfinite(loss)
    with pytest.raises(ConfigError, match=r"action_dropout: expected a share in \[0, 1\), got 1.0"):
        configs.build(TeacherTrainingConfig, configs.merge(section, {"action_dropout": 1.0}), "teacher").validate()
