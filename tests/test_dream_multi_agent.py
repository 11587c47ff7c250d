"""The duo dream as PettingZoo envs: API and seed tests, per-agent rewards, a multi-step seed test."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

from worldenv.envs import env as aec_env
from worldenv.envs import parallel_env
from worldenv.scenes.duo import parallel_env as real_parallel_env


def test_parallel_api_and_seed_tests_pass(duo_dream):
    # The API tests reset with options={"options": 1}: taken, with a warning, where the Gymnasium dream refuses it.
    with pytest.warns(UserWarning, match=r"ignoring options \['options'\]; the dream's are \['context_frames'"):
        parallel_api_test(parallel_env(checkpoint=duo_dream, max_cycles=6), num_cycles=10)
    parallel_seed_test(lambda: parallel_env(checkpoint=duo_dream, max_cycles=6), num_cycles=10)
    with pytest.warns(UserWarning, match=r"ignoring options \['options'\]"):
        api_test(aec_env(checkpoint=duo_dream, max_cycles=6), num_cycles=10)


def test_spaces_and_agents_equal_the_ground_truth(duo_dream):
    dream, real = parallel_env(checkpoint=duo_dream), real_parallel_env()
    assert dream.possible_agents == real.possible_agents
    for agent in real.possible_agents:
        assert dream.observation_space(agent) == real.observation_space(agent)
        assert dream.action_space(agent) == real.action_space(agent)
    assert dream.max_cycles == real.max_cycles == 200


def test_multi_step_rollouts_repeat_under_a_seed(duo_dream):
    """parallel_seed_test compares one step only (its loop breaks on the agent names)."""

    def run(seed):
        env = parallel_env(checkpoint=duo_dream, max_cycles=8)
        out = [env.reset(seed=seed)]
        rng = np.random.default_rng(0)
        while env.agents:
            out.append(env.step({agent: rng.uniform(-1, 1, 2).astype(np.float32) for agent in env.agents}))
        return out

    a, b, c = run(3), run(3), run(4)
    assert len(a) == 9 and data_equivalence(a, b) and not data_equivalence(a, c)


def test_each_agent_gets_its_own_reward_head(duo_dream):
    env = parallel_env(checkpoint=duo_dream, max_cycles=3)
    env.reset(seed=0)
    _, rewards, _, truncations, _ = env.step({agent: np.zeros(2, np.float32) for agent in env.agents})
    assert set(rewards) == {"agent_0", "agent_1"} and rewards["agent_0"] != rewards["agent_1"]
    assert all(isinstance(r, float) for r in rewards.values()) and not any(truncations.values())


def test_single_agent_scene_is_refused(reacher_dream):
    with pytest.raises(ValueError, match="needs a multi-agent scene"):
        parallel_env(scene="reacher", checkpoint=reacher_dream)


def test_joint_duo_dream_id_sums_the_agents_rewards(duo_dream):
    import gymnasium as gym

    env = gym.make("worldenv/DuoDream-v0", checkpoint=duo_dream)
    assert env.spec.max_episode_steps == 200 and env.unwrapped.dream.scene == "duo"
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert reward == pytest.approx(info["reward_agent_0"] + info["reward_agent_1"])


def test_the_shipped_duo_dream_passes_the_pettingzoo_checks():
    with pytest.warns(UserWarning, match=r"ignoring options \['options'\]"):
        parallel_api_test(parallel_env(max_cycles=4), num_cycles=6)
