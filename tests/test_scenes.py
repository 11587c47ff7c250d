"""Contract tests every ground-truth scene must pass (the single-agent Gymnasium view)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import worldenv
from worldenv.scenes import SCENES, make_scene, scene_info

SCENE_NAMES = sorted(SCENES)


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_gymnasium_and_sb3_checkers_pass_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make_scene(name)
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
        env.close()


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_spaces_observation_and_state(name):
    env = make_scene(name)
    assert env.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert isinstance(env.action_space, gym.spaces.Box)
    assert env.action_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3)
    assert obs.std() > 5, "the frame should show something, not a flat colour"
    state = info["state"]
    assert set(state) == {"qpos", "qvel", "task"}
    assert state["task"].ndim == 1 and state["task"].size > 0
    obs2, *_, info2 = env.step(env.action_space.sample())
    assert info2["state"]["task"].shape == state["task"].shape
    assert np.array_equal(env.render(), obs2)
    env.close()


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_same_seed_same_episode(name):
    def rollout(seed):
        env = make_scene(name)
        env.action_space.seed(seed)
        frames, states, rewards = [env.reset(seed=seed)[0]], [], []
        for _ in range(15):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            frames.append(obs)
            states.append(info["state"]["qpos"])
            rewards.append(reward)
            if terminated:
                break
        env.close()
        return np.stack(frames), np.stack(states), np.array(rewards)

    first, again, other = rollout(7), rollout(7), rollout(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1]), "a different seed should give a different episode"


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_frame_size_is_configurable(name):
    env = make_scene(name, width=96, height=80)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (80, 96, 3)
    assert env.observation_space.shape == (80, 96, 3)
    env.close()


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_goal_action_is_a_valid_action(name):
    env = make_scene(name)
    env.reset(seed=1)
    for _ in range(10):
        action = env.unwrapped.goal_action()
        assert env.action_space.contains(action)
        env.step(action)
    env.close()


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_bad_actions_raise_clear_errors(name):
    env = make_scene(name).unwrapped
    env.reset(seed=0)
    shape = env.action_space.shape
    with pytest.raises(ValueError, match=rf"expected an action of shape \({shape[0]},\)"):
        env.step(np.zeros(shape[0] + 1, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(shape, np.nan, np.float32))
    with pytest.raises(TypeError, match="real-valued"):
        env.step(np.array(["a"] * shape[0]))
    env.close()


def test_out_of_range_actions_are_clipped():
    """Documented policy: actions outside [-1, 1] act as the nearest bound."""
    big, clipped = make_scene("reacher"), make_scene("reacher")
    big.reset(seed=0)
    clipped.reset(seed=0)
    obs_big, *_ = big.step(np.array([5.0, -7.0]))
    obs_clipped, *_ = clipped.step(np.array([1.0, -1.0], np.float32))
    np.testing.assert_array_equal(obs_big, obs_clipped)


@pytest.mark.parametrize(
    "kwargs, error", [({"width": 15}, ValueError), ({"height": 63}, ValueError), ({"width": 64.0}, TypeError)]
)
def test_bad_constructor_arguments(kwargs, error):
    with pytest.raises(error):
        make_scene("reacher", **kwargs)


def test_unsupported_render_mode_is_refused():
    from worldenv.scenes.reacher import ReacherScene

    with pytest.raises(ValueError, match=r"expected render_mode in \['rgb_array'\]"):
        ReacherScene(render_mode="human")


def test_unknown_scene_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown scene 'hopper'; expected one of \['cartpole', 'duo', 'panorama', 'reacher'\]"):
        scene_info("hopper")


def test_registered_on_import():
    for info in SCENES.values():
        assert info.env_id in gym.registry
    assert worldenv.__version__
