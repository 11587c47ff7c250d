"""DiffusionWorld-v0, the single dream env: checkers, spaces, seeding, contexts, bad input."""

import os
import shutil
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env, data_equivalence

import worldenv
from worldenv.checkpoint import CheckpointError
from worldenv.envs import DiffusionWorldEnv


def make(checkpoint, **kwargs):
    return gym.make("DiffusionWorld-v0", checkpoint=checkpoint, **kwargs)


def rollout(env, seed, steps=6, options=None):
    observations, rewards = [env.reset(seed=seed, options=options)[0]], []
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    for action in actions:
        observation, reward, *_ = env.step(action)
        observations.append(observation)
        rewards.append(reward)
    return np.stack(observations), np.array(rewards)


def test_gymnasium_and_sb3_checkers_pass_without_warnings(reacher_dream):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make(reacher_dream)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)


def test_a_bfloat16_dream_passes_the_checkers_and_is_seeded(reacher_dream):
    """dtype="bfloat16": the networks in bfloat16 (about 2x faster on a CPU with AMX), the
    same spaces, observations uint8, the same seed the same rollout."""
    env = make(reacher_dream, dtype="bfloat16")
    assert env.unwrapped.dream.model.dtype == torch.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    first, first_rewards = rollout(env, seed=3)
    again, again_rewards = rollout(make(reacher_dream, dtype="bfloat16"), seed=3)
    assert first.dtype == np.uint8 and np.array_equal(first, again) and np.array_equal(first_rewards, again_rewards)
    with pytest.raises(ValueError, match="expected dtype to be 'auto', one of"):
        make(reacher_dream, dtype="float16")


def test_the_panorama_dream_with_memory_passes_the_checkers(panorama_dream):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make("DiffusionWorld-v0", scene="panorama", checkpoint=panorama_dream)
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert env.unwrapped.dream.model.cache.shape.memory_frames == 2
    assert env.observation_space == gym.make("worldenv/Panorama-v0").observation_space


def test_spaces_and_metadata_equal_the_ground_truth(reacher_dream):
    dream, real = make(reacher_dream), gym.make("worldenv/Reacher-v0")
    assert dream.observation_space == real.observation_space
    assert dream.action_space == real.action_space
    assert dream.metadata["render_fps"] == real.metadata["render_fps"]
    assert dream.spec.max_episode_steps == real.spec.max_episode_steps == 50


def test_seeded_reset_reproduces_the_rollout_and_seeds_differ(reacher_dream):
    env = make(reacher_dream)
    first, rewards = rollout(env, seed=3)
    again, rewards_again = rollout(env, seed=3)
    other, _ = rollout(env, seed=4)
    assert first.dtype == np.uint8 and first.shape == (7, 64, 64, 3)
    assert np.array_equal(first, again) and np.array_equal(rewards, rewards_again)
    assert not np.array_equal(first[1:], other[1:])
    assert not np.array_equal(first[1], first[2])  # the dream moves


def test_reset_from_the_bank_starts_on_a_real_frame(reacher_dream):
    env = DiffusionWorldEnv(checkpoint=reacher_dream)
    observation, info = env.reset(seed=0)
    bank = env.dream.contexts
    assert np.array_equal(observation, bank.frames[info["context_index"], -1].numpy())
    assert np.array_equal(env.render(), observation)


def test_reset_from_caller_context(reacher_dream):
    real = gym.make("worldenv/Reacher-v0")
    frames = [real.reset(seed=1)[0]]
    actions = [np.zeros(2, np.float32)]
    for _ in range(2):
        actions.append(real.action_space.sample())
        frames.append(real.step(actions[-1])[0])
    context = {"context_frames": np.stack(frames), "context_actions": np.stack(actions)}
    env = make(reacher_dream)
    observation, info = env.reset(seed=0, options=context)
    assert np.array_equal(observation, frames[-1]) and "context_index" not in info
    a, _ = rollout(env, seed=5, options=context)
    b, _ = rollout(env, seed=5, options=context)
    assert np.array_equal(a, b)


def test_time_limit_truncates(reacher_dream):
    env = make(reacher_dream, max_episode_steps=3)
    env.reset(seed=0)
    results = [env.step(env.action_space.sample()) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]


def test_out_of_range_actions_are_clipped(reacher_dream):
    env = make(reacher_dream)
    env.reset(seed=0)
    clipped = env.step(np.array([1.0, -1.0], np.float32))
    env.reset(seed=0)
    wild = env.step(np.array([7.0, -3.0]))
    assert data_equivalence(clipped, wild)


@pytest.mark.parametrize(
    "action, error, message",
    [
        (np.zeros(3, np.float32), ValueError, r"expected an action of shape \(2,\)"),
        (np.zeros((1, 2), np.float32), ValueError, r"expected an action of shape \(2,\)"),
        (np.array(["a", "b"]), TypeError, "real-valued action"),
        (np.array([np.nan, 0.0]), ValueError, "finite action"),
    ],
)
def test_bad_actions_raise(reacher_dream, action, error, message):
    env = DiffusionWorldEnv(checkpoint=reacher_dream)
    env.reset(seed=0)
    with pytest.raises(error, match=message):
        env.step(action)


def test_bad_contexts_raise(reacher_dream):
    env = DiffusionWorldEnv(checkpoint=reacher_dream)
    frames, actions = np.zeros((3, 64, 64, 3), np.uint8), np.zeros((3, 2), np.float32)
    bad = [
        ({"context_frames": frames[:, :32], "context_actions": actions}, "context_frames of shape"),
        ({"context_frames": frames.astype(np.float32), "context_actions": actions}, "dtype uint8"),
        ({"context_frames": frames, "context_actions": actions[:2]}, r"context_actions of shape \(3, 2\)"),
        ({"context_frames": frames, "context_actions": np.full((3, 2), np.nan)}, "finite context_actions"),
        ({"context_frames": frames}, "context_actions"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            env.reset(seed=0, options=options)


def test_misuse_raises(reacher_dream, duo_dream, tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="call reset"):
        DiffusionWorldEnv(checkpoint=reacher_dream).step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"unknown scene 'pong'; expected one of \['cartpole', 'duo'"):
        DiffusionWorldEnv(scene="pong", checkpoint=reacher_dream)
    with pytest.raises(CheckpointError, match="a checkpoint of scene 'duo', but scene='reacher'"):
        DiffusionWorldEnv(scene="reacher", checkpoint=duo_dream)
    with pytest.raises(CheckpointError, match="bundle.json: missing"):
        DiffusionWorldEnv(checkpoint=tmp_path)
    monkeypatch.setenv("WORLDENV_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match="no shipped checkpoint for scene 'cartpole'"):
        DiffusionWorldEnv(scene="cartpole")
    monkeypatch.delenv("WORLDENV_CHECKPOINTS")
    with pytest.raises(ValueError, match="render_mode"):
        DiffusionWorldEnv(checkpoint=reacher_dream, render_mode="human")


def test_corrupt_checkpoint_is_refused(reacher_dream, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(reacher_dream, broken)
    weights = broken / "teacher.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        DiffusionWorldEnv(checkpoint=broken)


def test_shipped_checkpoint_loads_from_any_directory(tmp_path):
    """The default dream: the shipped reacher checkpoint, found beside the package, and the
    ``worldenv:`` prefix registering the ids without an import."""
    script = (
        "import gymnasium as gym\n"
        "env = gym.make('worldenv:DiffusionWorld-v0')\n"
        "obs, _ = env.reset(seed=0)\n"
        "obs, reward, term, trunc, _ = env.step(env.action_space.sample())\n"
        "assert obs.shape == (64, 64, 3) and obs.dtype.name == 'uint8' and -5 < reward <= 0.5, reward\n"
        "print(env.unwrapped.dream.checkpoint)\n"
    )
    environment = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    expected = os.path.join(os.path.dirname(os.path.dirname(worldenv.__file__)), "checkpoints", "reacher")
    assert result.stdout.strip() == expected


@pytest.mark.parametrize("scene", ["reacher", "cartpole", "panorama"])
def test_the_shipped_dreams_pass_the_checkers(scene):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make("DiffusionWorld-v0", **({} if scene == "reacher" else {"scene": scene}))
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert env.unwrapped.dream.scene == scene
    assert env.unwrapped.dream.component == "student_consistency"  # each bundle serves its 1-step student


def test_a_bank_of_starts_recorded_in_the_scene_begins_with_the_shipped_one(reacher_dream):
    from worldenv.envs import DiffusionWorldVectorEnv

    shipped = DiffusionWorldEnv(checkpoint=reacher_dream).dream.contexts
    env = DiffusionWorldEnv(checkpoint=reacher_dream, start_contexts=shipped.count + 3)
    bank = env.dream.contexts
    assert (bank.count, bank.length) == (shipped.count + 3, shipped.length)
    # Recorded as `worldenv contexts` records the bundle's bank, with its seed: the shipped starts come first.
    assert torch.equal(bank.frames[: shipped.count], shipped.frames)
    assert torch.equal(bank.episode_seeds[: shipped.count], shipped.episode_seeds)
    assert len(set(bank.episode_seeds.tolist())) == bank.count
    observation, info = env.reset(seed=0)
    assert np.array_equal(observation, bank.frames[info["context_index"], -1].numpy())
    assert DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, start_contexts=2).dream.contexts.count == 2
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="start_contexts"):
            DiffusionWorldEnv(checkpoint=reacher_dream, start_contexts=bad)


def test_starts_recorded_within_w_steps_are_windows_of_real_episodes():
    from worldenv.contexts import record_start_contexts
    from worldenv.data.collect import CollectConfig, run_episode
    from worldenv.data.policies import make_policy
    from worldenv.scenes import make_scene

    length, within = 3, 12
    first, _ = record_start_contexts("reacher", 4, length, 64, seed=7)
    anywhere, config = record_start_contexts("reacher", 4, length, 64, seed=7, within=within)
    assert config["within"] == within and first.offsets.tolist() == [0, 0, 0, 0]
    # The same episodes, run further (the reacher never ends early), with their windows placed by their own draws.
    assert torch.equal(anywhere.episode_seeds, first.episode_seeds)
    offsets = anywhere.offsets.tolist()
    assert all(0 <= offset <= within for offset in offsets) and any(offset > 0 for offset in offsets)
    env = make_scene("reacher", width=64, height=64)
    replay = CollectConfig(scene="reacher", episodes=4, steps_per_episode=within + length - 1, seed=7)
    for i, offset in enumerate(offsets):
        episode = run_episode(env, make_policy("mix"), replay, i)
        assert np.array_equal(anywhere.frames[i].numpy(), episode.frames[offset : offset + length])
        # Each frame's action is the one that led to it; only an episode's first frame has none.
        led_to = np.concatenate([np.zeros((1, 2), np.float32), episode.actions])[offset : offset + length]
        assert np.array_equal(anywhere.actions[i].numpy(), led_to)
    env.close()
    with pytest.raises(ValueError, match="within"):
        record_start_contexts("reacher", 1, length, 64, within=-1)


def test_placing_the_starts_needs_a_recorded_bank(reacher_dream):
    with pytest.raises(ValueError, match="start_contexts=N"):
        DiffusionWorldEnv(checkpoint=reacher_dream, start_within=10)
    with pytest.raises(ValueError, match="start_contexts=N"):
        DiffusionWorldEnv(checkpoint=reacher_dream, start_policy="roam")
    env = DiffusionWorldEnv(checkpoint=reacher_dream, start_contexts=3, start_within=10)
    observation, info = env.reset(seed=0)
    assert np.array_equal(observation, env.dream.contexts.frames[info["context_index"], -1].numpy())


@pytest.mark.parametrize("device, available", [("cuda", False), ("cuda:3", True), ("mps", False), ("tpu", False)])
def test_a_device_this_torch_cannot_use_is_refused_before_anything_loads(tmp_path, monkeypatch, device, available):
    """Not an AssertionError or a RuntimeError from deep inside torch: the device asked for and
    the ones there are, before the checkpoint (here: none) is even read."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(available))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    expected = "'cpu', 'cuda', 'cuda:0'" if available else "'cpu'"
    with pytest.raises(ValueError, match=rf"expected device to be one of \[{expected}\].*got '{device}'"):
        DiffusionWorldEnv(checkpoint=tmp_path, device=device)


def test_torch_actions_are_accepted_and_ragged_ones_refused(reacher_dream):
    """A policy's output as it comes: a tensor still in the autograd graph, or bfloat16."""
    env = DiffusionWorldEnv(checkpoint=reacher_dream)
    action = np.array([0.5, -0.25], np.float32)
    env.reset(seed=0)
    expected = env.step(action)
    for tensor in (torch.tensor(action, requires_grad=True), torch.tensor(action, dtype=torch.bfloat16)):
        env.reset(seed=0)
        assert data_equivalence(env.step(tensor), expected)
    with pytest.raises(ValueError, match=r"expected an action of shape \(2,\) and a real dtype, got a ragged sequence"):
        env.step([[1.0], [1.0, 2.0]])


def test_unknown_reset_options_are_refused(reacher_dream):
    env = DiffusionWorldEnv(checkpoint=reacher_dream)
    frames = env.dream.contexts.frames[0].numpy()
    known = r"\['context_frames', 'context_actions'\]"
    with pytest.raises(ValueError, match=rf"unknown options \['context_frame'\]; expected keys from {known}"):
        env.reset(seed=0, options={"context_frame": frames})
    with pytest.raises(TypeError, match=rf"expected options to be None or a dict with keys from {known}, got list"):
        env.reset(seed=0, options=[1, 2])


def test_context_actions_are_clipped_as_step_clips_actions(reacher_dream):
    env = make(reacher_dream)
    frames = env.unwrapped.dream.contexts.frames[0].numpy()
    actions = np.tile(np.array([1.0, -1.0], np.float32), (len(frames), 1))
    clipped, _ = rollout(env, seed=5, options={"context_frames": frames, "context_actions": actions})
    wild, _ = rollout(env, seed=5, options={"context_frames": frames, "context_actions": actions * 10.0})
    assert np.array_equal(clipped, wild)


def test_the_generic_id_takes_its_scene_and_time_limit_from_the_checkpoint(duo_dream, panorama_dream):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make(duo_dream)  # no scene=: the bundle's
        check_env(env.unwrapped)
    assert env.unwrapped.dream.scene == "duo"
    assert env.spec.max_episode_steps == gym.spec("worldenv/DuoDream-v0").max_episode_steps == 200
    env.reset(seed=0)
    assert not any(env.step(np.zeros(4, np.float32))[3] for _ in range(50))  # not the reacher's 50
    panorama = make(panorama_dream, scene="panorama")
    assert panorama.spec.max_episode_steps == gym.spec("worldenv/PanoramaDream-v0").max_episode_steps
    assert make(duo_dream, max_episode_steps=3).spec.max_episode_steps == 3
    longer = make(duo_dream, episode_steps=230)  # the way past the scene's limit on this id
    longer.reset(seed=0)
    truncated = [longer.step(np.zeros(4, np.float32))[3] for _ in range(230)]
    assert not any(truncated[:229]) and truncated[229]
    with pytest.raises(ValueError, match="expected episode_steps to be a positive int"):
        make(duo_dream, episode_steps=0)


def test_a_closed_env_refuses_to_go_on(reacher_dream):
    env = make(reacher_dream)
    env.reset(seed=0)
    env.close()
    env.close()  # harmless
    assert env.unwrapped.dream is None  # the model is freed
    for call in (lambda: env.step(np.zeros(2, np.float32)), lambda: env.reset(seed=0), env.render):
        with pytest.raises(RuntimeError, match="DiffusionWorldEnv.* the env is closed; make a new env"):
            call()


def test_no_render_mode_is_accepted_and_render_warns(reacher_dream):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make(reacher_dream, render_mode=None)
        check_env(env.unwrapped)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.unwrapped.render() is None
