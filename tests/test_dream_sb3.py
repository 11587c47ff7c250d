"""The SB3 VecEnv adapter: SB3's conventions on done, seeding, wrappers, and PPO training."""

import warnings

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecCheckNan, VecFrameStack, VecMonitor

from worldenv.envs.sb3 import DreamVecEnv


def test_done_carries_the_terminal_observation_and_the_next_episode_starts(reacher_dream):
    venv = DreamVecEnv(2, checkpoint=reacher_dream, max_episode_steps=3)
    venv.seed(5)
    first = venv.reset()
    assert first.shape == (2, 64, 64, 3) and first.dtype == np.uint8
    for _ in range(3):
        observations, rewards, dones, infos = venv.step(np.zeros((2, 2), np.float32))
    assert rewards.dtype == np.float32 and dones.all()
    for i in range(2):
        assert infos[i]["TimeLimit.truncated"] is True
        assert infos[i]["terminal_observation"].shape == (64, 64, 3)
        assert not np.array_equal(infos[i]["terminal_observation"], observations[i])
    venv.seed(5)
    assert np.array_equal(venv.reset(), first)  # SB3's seed() applies at the next reset


def test_sb3_wrappers_and_evaluation_accept_it(reacher_dream):
    venv = VecMonitor(
        VecCheckNan(
            VecFrameStack(DreamVecEnv(2, checkpoint=reacher_dream, max_episode_steps=4), 2, channels_order="last"),
            raise_exception=True,
        )
    )
    model = PPO("CnnPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=2, return_episode_rewards=True)
    assert lengths == [4, 4] and all(np.isfinite(rewards))


@pytest.mark.filterwarnings("ignore::tqdm.TqdmExperimentalWarning")  # SB3's own bar is tqdm.rich, "experimental"
def test_ppo_cnn_policy_trains_on_the_dream(reacher_dream):
    venv = VecMonitor(DreamVecEnv(4, checkpoint=reacher_dream, max_episode_steps=16))
    model = PPO("CnnPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256, progress_bar=True)  # as the README's snippet (rich is a dependency)
    assert model.num_timesteps == 256  # a whole number of rollouts: no more steps than asked
    assert any(not np.allclose(a, b.detach()) for a, b in zip(before, model.policy.parameters()))
    assert len(model.ep_info_buffer) == 256 // 16


def test_adapter_refuses_what_it_cannot_do(reacher_dream):
    venv = DreamVecEnv(2, checkpoint=reacher_dream)
    assert venv.get_attr("render_mode") == ["rgb_array", "rgb_array"]
    assert venv.env_is_wrapped(object) == [False, False]
    with pytest.raises(AttributeError, match="share one model"):
        venv.set_attr("render_mode", None)
    with pytest.raises(ValueError, match="same-step autoreset"):
        DreamVecEnv(2, checkpoint=reacher_dream, autoreset_mode="NextStep")
