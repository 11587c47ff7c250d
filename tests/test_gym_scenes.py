"""Any Gymnasium MuJoCo env as a scene (``gym:ENV``): the scene itself, ``worldenv init``,
and the whole path from collection to a scored agent on tiny configs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import worldenv  # noqa: F401  (registers DiffusionWorld-v0)
from worldenv.cli import main as cli_main
from worldenv.config import ConfigError, build
from worldenv.data.collect import CollectConfig, collect
from worldenv.data.format import Manifest
from worldenv.eval.probe import QUANTITIES
from worldenv.scenes import make_scene, unwrapped_scene
from worldenv.train import main as train_main

ROOT = Path(__file__).parent.parent
IDP = "gym:InvertedDoublePendulum-v5"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}


def test_a_locomotion_env_is_filmed_by_its_tracking_camera_with_its_true_state():
    env = make_scene("gym:HalfCheetah-v5", max_episode_steps=5)
    frame, info = env.reset(seed=3)
    scene = unwrapped_scene(env)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and scene.camera == "track"
    # The camera follows the torso: its x (qpos 0) is not in what the frame shows.
    assert info["state"]["qpos"].shape == (9,) and info["state"]["qvel"].shape == (9,)
    np.testing.assert_array_equal(info["state"]["task"], info["state"]["qpos"][1:])
    assert [q.name for q in QUANTITIES["gym:HalfCheetah-v5"]] == ["joint_angles", "slide_positions"]
    for step in range(5):
        frame, reward, terminated, truncated, info = env.step(np.full(6, 0.5, np.float32))
        assert np.isfinite(reward) and not terminated and truncated == (step == 4)
    assert "x_velocity" in info  # the env's own info comes through
    env.close()


def test_actions_map_to_the_envs_bounds_and_back():
    scene = unwrapped_scene(make_scene("gym:Hopper-v5"))
    low, high = scene.env_action_space.low, scene.env_action_space.high
    np.testing.assert_allclose(scene.to_env_action(-np.ones(3)), low)
    np.testing.assert_allclose(scene.to_env_action(np.ones(3)), high)
    action = np.array([-0.5, 0.0, 0.75], np.float32)
    np.testing.assert_allclose(scene.to_model_action(scene.to_env_action(action)), action, atol=1e-6)
    scene.close()


@pytest.mark.parametrize(
    "name, reason",
    [
        ("gym:CartPole-v1", "expected a continuous \\(Box\\) action space, got Discrete"),
        ("gym:Pendulum-v1", "not a MuJoCo env"),
        ("gym:HalfCheetah-v5@nowhere", "no camera 'nowhere'"),
        ("gym:NoSuchEnv-v0", "Gymnasium cannot make it"),
    ],
)
def test_what_cannot_be_a_scene_is_refused_with_the_reason(name, reason):
    with pytest.raises(ValueError, match=reason):
        make_scene(name)


def test_goal_without_an_expert_is_refused_before_collection():
    with pytest.raises(ConfigError, match="has none of its own"):
        build(CollectConfig, {"scene": IDP, "episodes": 1, "exploration_mix": {"goal": 1.0}}, "collect")


def test_an_sb3_expert_acts_for_goal_and_the_manifest_records_it(tmp_path):
    from stable_baselines3 import PPO

    from worldenv.init_config import preset
    from worldenv.io import sha256_file

    path = tmp_path / "expert.zip"
    PPO("MlpPolicy", gym.make("InvertedDoublePendulum-v5"), n_steps=8, batch_size=8).save(path)
    expert = {"path": str(path), "algo": "ppo", "deterministic": True}
    assert "goal" in preset("InvertedDoublePendulum-v5", expert=expert)["collect"]["exploration_mix"]
    settings = {"scene": IDP, "episodes": 2, "steps_per_episode": 5, "policy": "goal", "expert": expert}
    manifest = collect(build(CollectConfig, settings, "collect"), tmp_path / "data", progress=False)
    assert manifest.episodes == 2 and manifest.collection["expert"] == {**expert, "sha256": sha256_file(path)}


def tiny_preset(env: str, root: Path) -> Path:
    """``worldenv init``'s preset of ``env`` and, beside it, a tiny variant of it (``base:``)."""
    from worldenv.init_config import preset, render

    document = preset(env, root=f"{root}/")
    (root / "preset.yaml").write_text(render(document, f"worldenv init --env {env}"))
    train = {"steps": 4, "batch": 2, "warmup": 1, "log_every": 2, "checkpoint_every": 4}
    held_out = {"data": {"held_out_episodes": 1}}
    tiny = {
        "base": "preset.yaml",
        "collect": {"episodes": 3, "steps_per_episode": 12, "shard_size": 3},
        "tokenizer": {**held_out, "model": {"channels": [8, 8, 16], "latent_channels": 4}, "train": train},
        "teacher": {
            **held_out,
            "model": {"latent_channels": 4, "width": 16, "depth": 1, "heads": 2, "window_frames": 2, "action_history": 2},
            "train": train,
        },
        "probe": {**held_out, "steps": 5, "batch": 8, "width": 8},
        "consistency": {**held_out, "intervals": 2, "train": train},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    return root / "tiny.yaml"


@pytest.mark.parametrize("env", ["InvertedDoublePendulum-v5", "HalfCheetah-v5", "Hopper-v5"])
def test_init_collects_and_dreams_any_box_action_mujoco_env(env, tmp_path):
    from dream_bundles import tiny_dream_bundle

    from worldenv import config as configs

    preset = tiny_preset(env, tmp_path)
    config = configs.load(preset, "collect", CollectConfig)
    manifest = collect(config, tmp_path / "data", progress=False)
    scene = f"gym:{env}"
    action_dim = unwrapped_scene(make_scene(scene)).action_dim
    assert manifest.scene == scene and manifest.action_dim == action_dim and manifest.observation_shape == [64, 64, 3]
    assert Manifest.load(tmp_path / "data").collection["exploration_mix"] == {
        "uniform": 0.3,
        "jitter": 0.2,
        "smooth": 0.3,
        "push": 0.2,
    }
    bundle = tiny_dream_bundle(tmp_path / "bundle", scene, contexts=2, action_dim=action_dim)
    dream = gym.make("DiffusionWorld-v0", scene=scene, checkpoint=bundle)
    frame, _ = dream.reset(seed=0)
    frame, reward, terminated, truncated, _ = dream.step(dream.action_space.sample())
    assert frame.shape == (64, 64, 3) and np.isfinite(reward)
    dream.close()


def test_the_whole_path_for_a_gym_env(tmp_path):
    """collect, inspect, train tokenizer / teacher / probe, distil, contexts, eval against
    MuJoCo, the single and vector dream envs, record, and PPO in the dream scored in MuJoCo."""
    config = str(tiny_preset("InvertedDoublePendulum-v5", tmp_path))
    data, bundle = tmp_path / "data" / "inverteddoublependulum", tmp_path / "checkpoints" / "inverteddoublependulum"
    assert cli_main(["collect", "--config", config, "--workers", "1", "--out", str(data), "--no-progress"]) == 0
    assert cli_main(["inspect", str(data)]) == 0
    for task in ("tokenizer", "teacher", "probe"):
        assert train_main([task, "--config", config, "--no-progress"]) == 0
    assert cli_main(["distill", "--method", "consistency", "--config", config, "--no-progress"]) == 0
    assert cli_main(["contexts", "--checkpoint", str(bundle), "--count", "4", "--length", "3"]) == 0

    report = tmp_path / "eval.json"
    args = ["--episodes", "1", "--horizon", "3", "--context", "2", "--json", str(report)]
    assert cli_main(["eval", "--checkpoint", str(bundle), *args]) == 0
    scores = json.loads(report.read_text())
    assert scores["scene"] == IDP and set(scores["policies"]) == {"uniform", "smooth", "push"}  # no expert: push for goal
    assert "joint_angles" in scores["all"]["model"]["1"]

    single = gym.make("DiffusionWorld-v0", scene=IDP, checkpoint=bundle)
    assert single.reset(seed=0)[0].shape == (64, 64, 3)
    single.step(np.zeros(1, np.float32))
    single.close()
    vector = gym.make_vec("DiffusionWorld-v0", num_envs=2, scene=IDP, checkpoint=bundle)
    frames, _ = vector.reset(seed=0)
    assert frames.shape == (2, 64, 64, 3)
    vector.step(np.zeros((2, 1), np.float32))
    vector.close()
    video = tmp_path / "pair.gif"
    assert cli_main(["record", str(video), "--checkpoint", str(bundle), "--steps", "3", "--context", "2"]) == 0
    assert video.stat().st_size > 0

    ppo = [sys.executable, str(ROOT / "agents" / "ppo_dream.py"), "--threads", "1", "--scene", IDP]
    ppo += ["--checkpoint", str(bundle), "--env-steps", "64", "--num-envs", "2", "--n-steps", "32", "--batch-size", "32"]
    ppo += ["--dream-steps", "8", "--eval-every", "64", "--eval-episodes", "1", "--no-video", "--out", str(tmp_path / "agents")]
    result = subprocess.run(ppo, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["env_steps"] == 64 and np.isfinite(summary["real_return"])


def test_a_gym_scene_s_shipped_bundle_is_looked_up_under_its_directory_name(tmp_path, monkeypatch):
    """``checkpoint=None`` for ``gym:HalfCheetah-v5`` looks in ``checkpoints/halfcheetah``, the
    directory ``worldenv init`` names its data and runs after, camera or not."""
    from worldenv.checkpoint import CHECKPOINTS_VARIABLE, CheckpointError, shipped_checkpoint
    from worldenv.scenes import directory_name

    assert directory_name("gym:HalfCheetah-v5@track") == directory_name("HalfCheetah-v5") == "halfcheetah"
    assert directory_name("reacher") == "reacher"
    monkeypatch.setenv(CHECKPOINTS_VARIABLE, str(tmp_path))
    with pytest.raises(CheckpointError, match="halfcheetah"):
        shipped_checkpoint("gym:HalfCheetah-v5")
    (tmp_path / "halfcheetah").mkdir()
    assert shipped_checkpoint("gym:HalfCheetah-v5@track") == tmp_path / "halfcheetah"
