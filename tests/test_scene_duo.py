"""The duo scene: the joint Gymnasium env, its PettingZoo ParallelEnv and AEC
conversion, multi-step seeding, the physics (collisions, walls), the expert, and
the errors on bad input."""

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import worldenv  # noqa: F401  (sets MUJOCO_GL before MuJoCo loads; registers the ids)
from worldenv.scenes import duo
from worldenv.scenes.duo import AGENT_RADIUS, ARENA_HALF_SIZE, DuoParallelEnv, DuoScene


def test_parallel_api_test_passes_without_warnings():
    env = duo.parallel_env(max_cycles=25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(env, num_cycles=30)
    env.close()


def test_parallel_seed_test_and_max_cycles_test_pass():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_seed_test(lambda: duo.parallel_env(max_cycles=10), num_cycles=10)
        max_cycles_test(duo)


def test_aec_conversion_passes_api_test():
    env = duo.env(max_cycles=15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        api_test(env, num_cycles=20)
    env.close()


def _rollout(seed: int, steps: int) -> list[tuple]:
    env = duo.parallel_env(max_cycles=steps)
    observations, infos = env.reset(seed=seed)
    for agent in env.possible_agents:
        env.action_space(agent).seed(seed + env.possible_agents.index(agent))
    record = [(observations, infos)]
    while env.agents:
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        record.append(env.step(actions))
    env.close()
    return record


def test_same_seed_gives_the_same_episode_over_many_steps():
    # PettingZoo's parallel_seed_test compares only the first step (it tests any() of a
    # dict's keys), so compare every step of two whole episodes here.
    first, second = _rollout(seed=3, steps=25), _rollout(seed=3, steps=25)
    assert len(first) == len(second) == 26
    for step, (a, b) in enumerate(zip(first, second)):
        assert data_equivalence(a, b), f"episodes with the same seed differ at step {step}"
    other = _rollout(seed=4, steps=25)
    assert not np.array_equal(first[0][0]["agent_0"], other[0][0]["agent_0"])
    assert not data_equivalence(first[-1][1], other[-1][1])


def test_joint_scene_passes_gymnasium_and_sb3_checkers():
    # The unwrapped env of gym.make: check_env wants no wrappers but a spec (to try render modes).
    scene = gymnasium.make("worldenv/Duo-v0").unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gymnasium_check_env(scene, skip_render_check=False)
        sb3_check_env(scene, warn=True)
    scene.close()


def test_registered_joint_env():
    env = gymnasium.make("worldenv/Duo-v0")
    assert env.spec.max_episode_steps == 200
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (4,), np.float32)
    observation, info = env.reset(seed=0)
    assert observation.shape == (64, 64, 3) and observation.dtype == np.uint8
    assert info["state"]["task"].shape == (8,)
    assert env.metadata["render_fps"] == round(1 / (env.unwrapped.model.opt.timestep * DuoScene.frame_skip))
    env.close()


def test_parallel_env_contract():
    env = duo.parallel_env(max_cycles=3, width=32, height=48)
    observations, infos = env.reset(seed=0)
    assert env.agents == env.possible_agents == ["agent_0", "agent_1"]
    assert observations["agent_0"].shape == (48, 32, 3) and observations["agent_0"].dtype == np.uint8
    assert env.observation_space("agent_0") is env.observation_space("agent_0")
    assert env.action_space("agent_1") is env.action_space("agent_1")
    assert env.action_space("agent_0") is not env.action_space("agent_1")
    assert env.state().shape == env.state_space.shape
    for _ in range(3):
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        assert not np.shares_memory(observations["agent_0"], observations["agent_1"])
        assert np.array_equal(observations["agent_0"], env.render())
        assert all(type(reward) is float for reward in rewards.values())
        assert not any(terminations.values())
        task = infos["agent_0"]["state"]["task"]
        distances = np.linalg.norm(task[:4].reshape(2, 2) - task[4:].reshape(2, 2), axis=1)
        assert all(rewards[agent] <= -distance for agent, distance in zip(env.possible_agents, distances))
    assert all(truncations.values()) and env.agents == []
    env.close()


def test_goal_action_brings_both_agents_to_their_targets():
    scene = DuoScene()
    for seed in range(3):
        scene.reset(seed=seed)
        start = scene.distances()
        for _ in range(60):
            scene.step(scene.goal_action())
        end = scene.distances()
        assert np.all(end < start) and np.all(end < 0.05), (seed, start, end)
    scene.close()


def _place_agents(scene: DuoScene, positions) -> None:
    scene.data.qpos[:] = np.ravel(positions)
    scene.data.qvel[:] = 0.0


def test_agents_collide_with_each_other_and_stay_inside_the_walls():
    scene = DuoScene()
    scene.reset(seed=0)
    _place_agents(scene, [[-0.2, 0.0], [0.2, 0.0]])
    for _ in range(40):  # head-on, at full force
        scene.step(np.array([1.0, 0.0, -1.0, 0.0], np.float32))
        gap = np.linalg.norm(np.subtract(*scene.agent_positions()))
        assert gap > 2 * AGENT_RADIUS - 0.01
    for _ in range(60):  # both into the corner (+x, +y)
        scene.step(np.ones(4, np.float32))
        assert np.all(np.abs(scene.agent_positions()) < ARENA_HALF_SIZE - AGENT_RADIUS + 0.01)
    scene.close()


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ({"agent_0": np.zeros(2)}, r"missing \['agent_1'\]"),
        ({"agent_0": np.zeros(2), "agent_1": np.zeros(2), "agent_7": np.zeros(2)}, r"unknown \['agent_7'\]"),
        ({"agent_0": np.zeros(3), "agent_1": np.zeros(2)}, r"agent_0: expected an action of shape \(2,\)"),
        ({"agent_0": np.zeros(2), "agent_1": np.array([0.0, np.nan])}, r"agent_1: expected a finite action"),
    ],
)
def test_bad_actions_raise_with_what_was_expected(actions, message):
    env = duo.parallel_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(actions)
    env.close()


def test_other_misuse_raises():
    env = DuoParallelEnv(max_cycles=1)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step({"agent_0": np.zeros(2), "agent_1": np.zeros(2)})
    with pytest.raises(ValueError, match=r"expected an agent in \['agent_0', 'agent_1'\]"):
        env.action_space("agent_2")
    with pytest.raises(ValueError, match="max_cycles"):
        DuoParallelEnv(max_cycles=0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        env.joint.reset(seed=0)
        env.joint.step(np.zeros(2))
    env.close()
