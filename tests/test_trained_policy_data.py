"""``worldenv collect --policy trained``: an agent's MuJoCo episodes as a dataset, the agent
seeing there what it saw in training (stacked probe readings), resumable and reproducible."""

import gymnasium as gym
import numpy as np
import pytest
from dream_bundles import tiny_dream_bundle
from gymnasium import spaces
from stable_baselines3 import PPO

from worldenv.checkpoint import load_bundle
from worldenv.cli import main as cli_main
from worldenv.config import ConfigError
from worldenv.data.collect import CollectConfig, collect
from worldenv.data.format import Manifest, read_shard
from worldenv.data.trained_policy import TrainedPolicy
from worldenv.eval.probe import load_probe
from worldenv.scenes import make_scene

STACK, READINGS = 2, 3


class ReadingsEnv(gym.Env):
    """Only the spaces matter: an untrained PPO with a cartpole agent's shapes."""

    observation_space = spaces.Box(-np.inf, np.inf, (STACK * READINGS,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("agent")
    bundle = tiny_dream_bundle(root / "bundle", "cartpole", probe_outputs=READINGS)
    PPO("MlpPolicy", ReadingsEnv(), seed=0, device="cpu").save(root / "policy.zip")
    return root / "policy.zip", bundle


def episodes(directory):
    return [e for shard in Manifest.load(directory).shards for e in read_shard(directory / shard.file)]


def config(agent, deterministic: bool, episodes: int = 2) -> CollectConfig:
    path, bundle = agent
    return CollectConfig(
        scene="cartpole",
        episodes=episodes,
        steps_per_episode=12,
        shard_size=1,
        seed=5,
        frames_after_termination=2,
        policy="trained",
        trained_policy={"path": str(path), "checkpoint": str(bundle), "stack": STACK, "deterministic": deterministic},
    )


def test_the_agent_acts_on_stacked_probe_readings_as_in_training(tmp_path, agent):
    """Every recorded action is what SB3's own predict gives on the probe readings of the
    recorded frames, stacked as VecFrameStack stacks them (zeros before the first)."""
    collect(config(agent, deterministic=True), tmp_path, progress=False)
    model, probe = PPO.load(agent[0], device="cpu"), load_probe(load_bundle(agent[1]))
    for episode in episodes(tmp_path):
        frames, actions = episode.frames, episode.actions
        readings = probe.predict(frames[: len(actions)]).astype(np.float32)
        observations = np.concatenate([np.vstack([np.zeros((1, READINGS), np.float32), readings[:-1]]), readings], axis=1)
        expected, _ = model.predict(observations, deterministic=True)
        np.testing.assert_allclose(actions, expected, atol=1e-6)


def test_sampled_actions_are_reproducible_per_episode_and_recorded_in_the_manifest(tmp_path, agent):
    first, second = (
        collect(config(agent, False), tmp_path / "a", progress=False),
        collect(config(agent, False), tmp_path / "b", progress=False),
    )
    a, b = episodes(tmp_path / "a"), episodes(tmp_path / "b")
    assert all(np.array_equal(x.actions, y.actions) for x, y in zip(a, b))
    assert not np.array_equal(a[0].actions, a[1].actions)  # each episode its own draws
    collect(config(agent, True), tmp_path / "mean", progress=False)
    assert not np.allclose(a[0].actions[:3], episodes(tmp_path / "mean")[0].actions[:3])
    assert Manifest.load(tmp_path / "a").collection["trained_policy"]["path"] == str(agent[0])
    assert first.steps == second.steps
    with pytest.raises(ConfigError, match="was collected with trained_policy="):  # another agent: another dataset
        collect(config(agent, True), tmp_path / "a", progress=False)


def test_the_command_records_the_agent_and_errors_name_what_is_expected(tmp_path, agent, capsys):
    path, bundle = agent
    assert (
        cli_main(
            [
                "collect",
                "--scene",
                "cartpole",
                "--episodes",
                "1",
                "--steps",
                "5",
                "--policy",
                "trained",
                "--agent",
                str(path),
                "--agent-checkpoint",
                str(bundle),
                "--workers",
                "1",
                "--no-progress",
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    recorded = Manifest.load(tmp_path / "cli").collection["trained_policy"]
    assert recorded["checkpoint"] == str(bundle) and len(recorded["sha256"]) == 64 and recorded["deterministic"] is False
    with pytest.raises(SystemExit, match="2"):
        cli_main(
            [
                "collect",
                "--scene",
                "cartpole",
                "--episodes",
                "1",
                "--policy",
                "goal",
                "--agent",
                str(path),
                "--out",
                str(tmp_path / "bad"),
            ]
        )
    assert "--agent: acts under --policy trained, not 'goal'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        cli_main(["collect", "--scene", "cartpole", "--episodes", "1", "--agent-deterministic", "--out", str(tmp_path / "bad")])
    assert "describe an agent: expected --agent PATH" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="trained_policy: expected settings exactly when policy is 'trained'"):
        CollectConfig(scene="cartpole", episodes=1, policy="trained").validate()
    with pytest.raises(ConfigError, match=r"trained_policy: expected keys .*unknown \['temperature'\], missing \['checkpoint'\]"):
        CollectConfig(scene="cartpole", episodes=1, policy="trained", trained_policy={"path": "p", "temperature": 1}).validate()
    scene = make_scene("cartpole").unwrapped
    scene.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"expected a policy that observes 3 stacked readings .* shape \(9,\); it observes \(6,\)"
    ):
        TrainedPolicy(str(path), str(bundle), stack=3).reset(scene, np.random.default_rng(0))
