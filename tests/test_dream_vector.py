"""The native vector dream: make_vec, vector == single (bit for bit, across autoresets),
the three autoreset modes, bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from worldenv.envs import DiffusionWorldVectorEnv

LIMIT = 4


def plan(steps: int, envs: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.2, 1.2, (steps, envs, 2)).astype(np.float32)


def single_env_run(checkpoint, seed: int, actions: np.ndarray, autoreset: AutoresetMode, scene: str = "reacher"):
    """What one env does under Gymnasium's autoreset semantics, driven by hand."""
    env = gym.make("DiffusionWorld-v0", checkpoint=checkpoint, scene=scene, max_episode_steps=LIMIT)
    observation, _ = env.reset(seed=seed)
    out = {"obs": [observation], "reward": [], "terminated": [], "truncated": [], "final": []}
    done = False
    for action in actions:
        if done and autoreset == AutoresetMode.NEXT_STEP:
            observation, _ = env.reset()
            reward, terminated, truncated = 0.0, False, False
        else:
            observation, reward, terminated, truncated, _ = env.step(action)
        final = None
        if (terminated or truncated) and autoreset == AutoresetMode.SAME_STEP:
            final = observation
            observation, _ = env.reset()
        done = terminated or truncated
        for key, value in zip(
            ("obs", "reward", "terminated", "truncated", "final"), (observation, reward, terminated, truncated, final)
        ):
            out[key].append(value)
    return out


def test_make_vec_uses_the_native_vector_env(reacher_dream):
    envs = gym.make_vec("DiffusionWorld-v0", num_envs=3, checkpoint=reacher_dream)
    assert isinstance(envs, DiffusionWorldVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.max_episode_steps == 50  # the registered time limit
    assert envs.single_observation_space == gym.make("worldenv/Reacher-v0").observation_space
    observations, info = envs.reset(seed=0)
    assert observations.shape == (3, 64, 64, 3) and observations.dtype == np.uint8
    assert info["_context_index"].all()
    observations, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
    assert rewards.dtype == np.float64 and terminated.dtype == truncated.dtype == bool
    assert len(envs.render()) == 3


@pytest.mark.parametrize(
    "mode, scene",
    [(AutoresetMode.NEXT_STEP, "reacher"), (AutoresetMode.SAME_STEP, "reacher"), (AutoresetMode.NEXT_STEP, "panorama")],
)
def test_each_vector_env_reproduces_the_single_env_exactly(request, mode, scene):
    """Seeds seed + i, the same actions, two and a half episodes: every observation, reward
    and flag equal, bit for bit, including what autoreset does. The panorama bundle has
    long-term memory: which frames it keeps is decided per env, whatever the batch."""
    checkpoint = request.getfixturevalue(f"{scene}_dream")
    envs = DiffusionWorldVectorEnv(3, checkpoint=checkpoint, scene=scene, max_episode_steps=LIMIT, autoreset_mode=mode)
    actions = plan(11, 3)
    observations, _ = envs.reset(seed=10)
    steps = [envs.step(a) for a in actions]
    for i in range(3):
        expected = single_env_run(checkpoint, 10 + i, actions[:, i], mode, scene)
        assert np.array_equal(observations[i], expected["obs"][0])
        for t, (obs, reward, terminated, truncated, info) in enumerate(steps):
            assert np.array_equal(obs[i], expected["obs"][t + 1]), (i, t)
            assert reward[i] == expected["reward"][t] and terminated[i] == expected["terminated"][t]
            assert truncated[i] == expected["truncated"][t]
            if expected["final"][t] is not None:
                assert info["_final_obs"][i] and np.array_equal(info["final_obs"][i], expected["final"][t])
            elif mode == AutoresetMode.SAME_STEP and "_final_obs" in info:
                assert not info["_final_obs"][i]
    assert sum(s[3].sum() for s in steps) >= 6  # the time limit did fire, twice per env


TEACHER = {"model": "teacher", "sampling_steps": 2, "commit": "latent"}


@pytest.mark.parametrize(
    "serving, threads",
    [({}, 1), (TEACHER, 1), ({}, 2)],
    ids=["served-student-frame-commit", "teacher-latent-commit", "served-2-threads"],
)
def test_vector_equals_single_on_the_shipped_reacher_bundle(serving, threads):
    """The README's promise on the shipped weights, at 1 and 2 threads: the tiny bundle above
    has no ActionFlow, whose einsum (a batched matmul) changed the last bits of the shipped
    reacher's dreams with the batch, 1 level by step 2, 18 by step 30 (issue 32). Three envs:
    an odd count, which is what 2 threads split unevenly."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        envs = gym.make_vec("DiffusionWorld-v0", num_envs=3, **serving)
        actions = plan(4, 3)
        first, _ = envs.reset(seed=3)
        steps = [envs.step(a) for a in actions]
        for i in range(3):
            env = gym.make("DiffusionWorld-v0", **serving)
            observation, _ = env.reset(seed=3 + i)
            assert np.array_equal(observation, first[i])
            for t, (observations, rewards, terminated, truncated, _) in enumerate(steps):
                observation, reward, *flags, _ = env.step(actions[t, i])
                assert np.array_equal(observation, observations[i]), (i, t)
                assert reward == rewards[i] and flags == [terminated[i], truncated[i]], (i, t)
    finally:
        torch.set_num_threads(previous)


def test_next_step_autoreset_ignores_the_action_and_resets_only_finished_envs(reacher_dream):
    envs = DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, max_episode_steps=LIMIT)
    envs.reset(seed=0)
    for action in plan(LIMIT, 2):
        *_, truncated, _ = envs.step(action)
    assert truncated.all()
    observations, rewards, terminated, truncated, info = envs.step(plan(1, 2)[0])
    assert (rewards == 0).all() and not terminated.any() and not truncated.any()
    assert info["_context_index"].all()


def test_disabled_autoreset_needs_a_masked_reset(reacher_dream):
    envs = DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, max_episode_steps=2, autoreset_mode="Disabled")
    envs.reset(seed=0)
    envs.step(plan(1, 2)[0])
    before, *_ = envs.step(plan(1, 2)[0])
    with pytest.raises(RuntimeError, match="reset_mask"):
        envs.step(plan(1, 2)[0])
    observations, info = envs.reset(options={"reset_mask": np.array([True, False])})
    assert info["_context_index"].tolist() == [True, False]
    assert np.array_equal(observations[1], before[1])
    with pytest.raises(RuntimeError, match=r"envs \[1\] ended"):
        envs.step(plan(1, 2)[0])


def test_vector_wrappers_work(reacher_dream):
    envs = RecordEpisodeStatistics(DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, max_episode_steps=3))
    envs.reset(seed=0)
    for action in plan(3, 2):
        *_, info = envs.step(action)
    assert info["_episode"].all() and (info["episode"]["l"] == 3).all()


def test_vector_bad_input_raises(reacher_dream):
    envs = DiffusionWorldVectorEnv(2, checkpoint=reacher_dream)
    with pytest.raises(RuntimeError, match="call reset"):
        envs.step(plan(1, 2)[0])
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected an action of shape \(2, 2\)"):
        envs.step(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="finite action"):
        envs.step(np.full((2, 2), np.inf))
    with pytest.raises(ValueError, match=r"reset_mask of shape \(2,\)"):
        envs.reset(options={"reset_mask": np.ones(3, bool)})
    with pytest.raises(ValueError, match="expected 2 seeds"):
        envs.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match=r"context_frames of shape \(2, 'T', 64, 64, 3\)"):
        envs.reset(options={"context_frames": np.zeros((3, 64, 64, 3), np.uint8), "context_actions": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="autoreset_mode"):
        DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="max_episode_steps"):
        DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, max_episode_steps=0)
    with pytest.raises(ValueError, match="positive integer number of envs"):
        DiffusionWorldVectorEnv(0, checkpoint=reacher_dream)


def test_vector_device_is_checked_in_the_same_place(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"expected device to be one of \['cpu'\].*got 'cuda'"):
        DiffusionWorldVectorEnv(2, checkpoint=tmp_path, device="cuda")


def test_vector_takes_torch_actions_and_refuses_ragged_ones_and_unknown_options(reacher_dream):
    envs = DiffusionWorldVectorEnv(2, checkpoint=reacher_dream)
    actions = plan(1, 2)[0]
    rounded = torch.tensor(actions, dtype=torch.bfloat16)
    for tensor, array in ((torch.tensor(actions, requires_grad=True), actions), (rounded, rounded.float().numpy())):
        envs.reset(seed=0)
        expected = envs.step(array)
        envs.reset(seed=0)
        observations, rewards, *_ = envs.step(tensor)
        assert np.array_equal(observations, expected[0]) and np.array_equal(rewards, expected[1])
    with pytest.raises(ValueError, match=r"expected an action of shape \(2, 2\) and a real dtype, got a ragged sequence"):
        envs.step([[1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"unknown options \['reset_masks'\]; expected keys from \['reset_mask', "):
        envs.reset(options={"reset_masks": np.ones(2, bool)})
    with pytest.raises(TypeError, match="expected options to be None or a dict"):
        envs.reset(options=[1, 2])


def test_make_vec_takes_the_time_limit_of_the_checkpoint_scene(duo_dream):
    envs = gym.make_vec("DiffusionWorld-v0", num_envs=2, checkpoint=duo_dream)
    assert envs.dream.scene == "duo" and envs.max_episode_steps == gym.spec("worldenv/DuoDream-v0").max_episode_steps
    assert gym.make_vec("DiffusionWorld-v0", num_envs=2, checkpoint=duo_dream, max_episode_steps=500).max_episode_steps == 500


def test_a_closed_vector_env_refuses_to_go_on(reacher_dream):
    envs = DiffusionWorldVectorEnv(2, checkpoint=reacher_dream)
    envs.reset(seed=0)
    envs.close()
    envs.close()  # harmless
    assert envs.dream is None
    for call in (lambda: envs.step(plan(1, 2)[0]), lambda: envs.reset(seed=0), envs.render):
        with pytest.raises(RuntimeError, match="DiffusionWorldVectorEnv.* the env is closed; make a new env"):
            call()


def test_vector_env_without_render_mode(reacher_dream):
    envs = DiffusionWorldVectorEnv(2, checkpoint=reacher_dream, render_mode=None)
    envs.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert envs.render() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        envs.step(plan(1, 2)[0])
