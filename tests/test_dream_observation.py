"""``observation="latent" | "probe"``: what an agent observes of a dream besides pixels
(``worldenv/envs/observation.py``). The dream itself does not change: the same seed and
actions give the same rewards, and ``render()`` the frames the pixel env observes."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import worldenv  # noqa: F401  (registers the ids)
from worldenv.envs import DiffusionWorldVectorEnv, parallel_env
from worldenv.envs.sb3 import DreamVecEnv


@pytest.fixture(scope="module")
def probed_dream(tmp_path_factory):
    """A tiny reacher dream with an (untrained) state probe of 8 readings."""
    from dream_bundles import tiny_dream_bundle

    return tiny_dream_bundle(tmp_path_factory.mktemp("dreams") / "probed", "reacher", probe_outputs=8)


def rollout(env, seed: int, steps: int = 5):
    """Observations, rewards and rendered frames of a seeded rollout under fixed random actions."""
    observation, _ = env.reset(seed=seed)
    observations, rewards, frames = [observation], [], [env.render()]
    for action in np.random.default_rng(1).uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32):
        observation, reward, *_ = env.step(action)
        observations.append(observation)
        rewards.append(reward)
        frames.append(env.render())
    return np.stack(observations), np.array(rewards), np.stack(frames)


@pytest.mark.parametrize("observation", ["latent", "probe"])
def test_the_checkers_pass_without_warnings(probed_dream, observation):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("DiffusionWorld-v0", checkpoint=probed_dream, observation=observation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert env.observation_space.dtype == np.float32 and len(env.observation_space.shape) == 1


@pytest.mark.parametrize("commit", ["latent", "frame"])
def test_a_latent_dream_is_the_pixel_dream_observed_otherwise(probed_dream, commit):
    pixels = gym.make("DiffusionWorld-v0", checkpoint=probed_dream, commit=commit)
    latent = gym.make("DiffusionWorld-v0", checkpoint=probed_dream, commit=commit, observation="latent")
    frames, rewards, _ = rollout(pixels, seed=4)
    latents, latent_rewards, shown = rollout(latent, seed=4)
    np.testing.assert_array_equal(latent_rewards, rewards)
    np.testing.assert_array_equal(shown, frames)  # render() decodes what the pixel env observed
    model = latent.unwrapped.dream.model
    assert latents.shape == (6, np.prod(model.latent_shape))
    np.testing.assert_array_equal(latents[-1].reshape(model.latent_shape), model.state.last_latent[0].numpy())


def test_a_latent_step_decodes_nothing_until_render(probed_dream):
    env = gym.make("DiffusionWorld-v0", checkpoint=probed_dream, observation="latent")
    tokenizer, decoded = env.unwrapped.dream.model.tokenizer, []
    decode = tokenizer.decode
    tokenizer.decode = lambda latents: decoded.append(len(latents)) or decode(latents)
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    assert decoded == []
    env.render()
    env.render()  # decoded once
    assert len(decoded) == 1


def test_the_probe_reads_the_frames_the_pixel_dream_shows(probed_dream):
    from worldenv.checkpoint import load_bundle
    from worldenv.eval.probe import load_probe

    frames, rewards, _ = rollout(gym.make("DiffusionWorld-v0", checkpoint=probed_dream), seed=2)
    readings, probe_rewards, _ = rollout(gym.make("DiffusionWorld-v0", checkpoint=probed_dream, observation="probe"), seed=2)
    np.testing.assert_array_equal(probe_rewards, rewards)
    expected = load_probe(load_bundle(probed_dream)).predict(frames)
    np.testing.assert_allclose(readings, expected, rtol=1e-5, atol=1e-5)


def test_a_probe_observation_needs_a_bundle_with_a_probe(reacher_dream):
    with pytest.raises(ValueError, match="observation='probe' needs the bundle's state probe"):
        gym.make("DiffusionWorld-v0", checkpoint=reacher_dream, observation="probe")
    with pytest.raises(ValueError, match="expected observation to be one of"):
        gym.make("DiffusionWorld-v0", checkpoint=reacher_dream, observation="state")
    with pytest.raises(ValueError, match="expected observation='pixels'"):
        parallel_env(observation="latent")


@pytest.mark.parametrize("observation", ["latent", "probe"])
def test_each_vector_env_reproduces_the_single_env(probed_dream, observation):
    """Across a next-step autoreset too: the time limit of 3 ends every episode during the rollout."""
    single = gym.make("DiffusionWorld-v0", checkpoint=probed_dream, observation=observation, max_episode_steps=3)
    envs = DiffusionWorldVectorEnv(3, checkpoint=probed_dream, observation=observation, max_episode_steps=3)
    assert envs.single_observation_space == single.observation_space
    actions = np.random.default_rng(1).uniform(-1, 1, (5, 3, 2)).astype(np.float32)
    observations, frames = [envs.reset(seed=10)[0]], [np.stack(envs.render())]
    for action in actions:
        observations.append(envs.step(action)[0])
        frames.append(np.stack(envs.render()))
    for i in range(3):
        first, _ = single.reset(seed=10 + i)
        np.testing.assert_array_equal(observations[0][i], first)
        np.testing.assert_array_equal(frames[0][i], single.render())
        for step in range(3):  # the episode up to its time limit; step 4 starts the next episode
            observation, *_ = single.step(actions[step, i])
            np.testing.assert_array_equal(observations[step + 1][i], observation)
            np.testing.assert_array_equal(frames[step + 1][i], single.render())


def test_sb3_gets_latent_terminal_observations(probed_dream):
    venv = DreamVecEnv(2, checkpoint=probed_dream, observation="latent", max_episode_steps=2)
    first = venv.reset()
    assert first.shape == (2, *venv.observation_space.shape) and first.dtype == np.float32
    for _ in range(2):
        venv.step_async(np.zeros((2, 2), np.float32))
        observations, _, dones, infos = venv.step_wait()
    assert dones.all()
    assert all(info["terminal_observation"].shape == venv.observation_space.shape for info in infos)
    model = venv.venv.dream.model
    np.testing.assert_array_equal(observations, model.state.last_latent.flatten(1).numpy())  # the next episodes' starts
    assert [frame.shape for frame in venv.get_images()] == [(64, 64, 3)] * 2
