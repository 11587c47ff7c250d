"""Smoke runs of the agent scripts (agents/), each in a subprocess with a tiny budget
on a tiny dream bundle: they run, score in MuJoCo and write what they promise."""

import importlib
import json
import os
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

AGENTS = Path(__file__).parent.parent / "agents"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def reacher_dream_with_probe(tmp_path_factory):
    """The tiny reacher dream with an (untrained) state probe: what ``--observation probe`` reads."""
    from dream_bundles import tiny_dream_bundle

    return tiny_dream_bundle(tmp_path_factory.mktemp("dreams") / "reacher", "reacher", probe_outputs=8)


@pytest.fixture(scope="module")
def duo_dream_with_probe(tmp_path_factory):
    from dream_bundles import tiny_dream_bundle

    return tiny_dream_bundle(tmp_path_factory.mktemp("dreams") / "duo", "duo", probe_outputs=8)


def import_agent(name: str):
    """An agent script as a module of the ``agents`` package."""
    return importlib.import_module(f"agents.{name}")


def run_script(name: str, *arguments: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(AGENTS / name), "--threads", "1", *arguments], env=ENV, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ppo_in_the_dream_is_scored_in_mujoco(reacher_dream_with_probe, tmp_path):
    summary = run_script(
        "ppo_dream.py",
        "--checkpoint",
        str(reacher_dream_with_probe),
        "--env-steps",
        "128",
        "--num-envs",
        "2",
        "--n-steps",
        "32",
        "--batch-size",
        "64",
        "--eval-every",
        "64",
        "--eval-episodes",
        "2",
        "--out",
        str(tmp_path),
    )
    run = tmp_path / "reacher-dream-seed0"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines] == [64, 128, 128]
    assert all(line["real_return"] < 0 and line["dream_return"] is not None for line in lines)  # reacher: negative distances
    assert summary["env_steps"] == 128 and summary["train_env_steps_per_s"] > 0
    assert (run / "policy.zip").stat().st_size > 0 and (run / "real_episode.mp4").stat().st_size > 0


def test_probe_readout_is_what_the_policy_sees(reacher_dream_with_probe):
    """Both worlds' frames go through the same frozen probe; the stack holds the last readings,
    and a finished episode's terminal observation is read too (PPO bootstraps from it)."""
    import gymnasium as gym
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv

    import worldenv  # noqa: F401
    from worldenv.checkpoint import load_bundle
    from worldenv.eval.probe import load_probe

    observations_module = import_agent("observations")
    frames_of, observed = observations_module.frames_of, observations_module.observed

    torch.set_num_threads(1)
    probe = load_probe(load_bundle(reacher_dream_with_probe))
    venv = observed(DummyVecEnv([lambda: gym.make("worldenv/Reacher-v0", max_episode_steps=3)] * 2), "probe", probe, 2)
    first = venv.reset()
    assert first.shape == (2, 16) and np.all(first[:, :8] == 0)  # nothing stacked before the first frame
    np.testing.assert_array_equal(first[:, 8:], probe.predict(frames_of(venv, first)))
    for _ in range(3):
        observations, _, dones, infos = venv.step(np.zeros((2, 2), np.float32))
    assert dones.all() and all(info["terminal_observation"].shape == (16,) for info in infos)
    with pytest.raises(ValueError, match="needs the bundle's state probe"):
        observed(venv, "probe", None, 2)


def test_ppo_baselines_train_in_mujoco_and_act_at_random(reacher_dream, tmp_path):
    mujoco = run_script(
        "ppo_dream.py",
        "--world",
        "mujoco",
        "--observation",
        "pixels",
        "--checkpoint",
        str(reacher_dream),
        "--env-steps",
        "128",
        "--num-envs",
        "2",
        "--n-steps",
        "32",
        "--batch-size",
        "64",
        "--eval-every",
        "1000",
        "--eval-episodes",
        "1",
        "--no-video",
        "--out",
        str(tmp_path),
    )
    random = run_script(
        "ppo_dream.py",
        "--world",
        "random",
        "--observation",
        "pixels",
        "--checkpoint",
        str(reacher_dream),
        "--eval-episodes",
        "2",
        "--out",
        str(tmp_path),
    )
    assert mujoco["env_steps"] == 128 and mujoco["train_env_return"] is not None  # Monitor saw training episodes
    still = run_script(
        "ppo_dream.py",
        "--world",
        "still",
        "--observation",
        "pixels",
        "--checkpoint",
        str(reacher_dream),
        "--eval-episodes",
        "2",
        "--out",
        str(tmp_path),
    )
    assert random["env_steps"] == 0 and random["real_return"] < 0
    assert still["real_return"] > random["real_return"]  # an arm that never moves pays no control cost
    assert (tmp_path / "reacher-random-seed0" / "summary.json").exists()
    table = subprocess.run(
        [sys.executable, str(AGENTS / "results_table.py"), "--runs", str(tmp_path)],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "| reacher | mujoco | 1 | 128 |" in table and "| reacher | - (zero actions) | 1 | 0 |" in table


def test_planner_acts_in_mujoco_from_imagined_returns(reacher_dream, tmp_path):
    summary = run_script(
        "plan.py",
        "--checkpoint",
        str(reacher_dream),
        "--episodes",
        "1",
        "--max-steps",
        "3",
        "--candidates",
        "4",
        "--horizon",
        "2",
        "--elites",
        "2",
        "--out",
        str(tmp_path),
    )
    assert len(summary["planner_returns"]) == 1 and summary["seconds_per_real_step"] > 0
    assert summary["imagined_steps_per_real_step"] == 4 * 2 * 2
    assert (tmp_path / "plan-reacher-seed0" / "summary.json").exists()


def test_planner_with_mujoco_as_its_model_beats_keeping_still(tmp_path):
    """The planner's ceiling: CEM with the true physics must beat the motionless arm, the
    policy a planner without foresight falls back to (its control cost is zero)."""
    import gymnasium as gym

    import worldenv  # noqa: F401

    summary = run_script(
        "plan.py",
        "--imagine",
        "mujoco",
        "--episodes",
        "3",
        "--candidates",
        "32",
        "--horizon",
        "12",
        "--iterations",
        "3",
        "--spread",
        "0.3",
        "--out",
        str(tmp_path),
    )
    env, still = gym.make("worldenv/Reacher-v0"), []
    for episode in range(3):
        env.reset(seed=2_000_000 + episode)  # the script's episode seeds
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
            total, done = total + reward, terminated or truncated
        still.append(total)
    assert summary["planner_return"] > np.mean(still) + 2, (summary["planner_returns"], still)
    assert (tmp_path / "plan-reacher-mujoco-seed0" / "summary.json").exists()


def test_return_audit_splits_each_world_return_from_paired_starts(reacher_dream_with_probe, tmp_path):
    import gymnasium as gym

    import worldenv  # noqa: F401

    summary = run_script(
        "return_audit.py",
        "--checkpoint",
        str(reacher_dream_with_probe),
        "--policies",
        "still",
        "random",
        "--episodes",
        "2",
        "--out",
        str(tmp_path),
    )
    still, random = summary["policies"]["still"], summary["policies"]["random"]
    for world in ("mujoco", "dream"):
        assert still[world]["control"] == 0.0  # the motionless arm pays nothing for its actions
        assert -50 < random[world]["control"] < -20  # uniform actions: |a|^2 averages 2/3 over 50 steps
    env, returns = gym.make("worldenv/Reacher-v0"), []
    for episode in range(2):
        env.reset(seed=1_000_000 + episode)  # the audit's episode seeds
        returns.append(sum(env.step(np.zeros(2, np.float32))[1] for _ in range(50)))
    assert still["mujoco"]["return"] == pytest.approx(np.mean(returns), abs=0.01)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert len(saved["policies"]["random"]["dream"]["per_step"]["return"]) == 50
    assert (tmp_path / "per_step.png").stat().st_size > 5000
    bad = subprocess.run(
        [sys.executable, str(AGENTS / "return_audit.py"), "--policies", "nowhere.zip"], env=ENV, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "expected 'still', 'random' or the path of an SB3 policy.zip" in bad.stderr


def test_return_audit_starts_each_dream_from_its_mujoco_episode(reacher_dream_with_probe):
    from worldenv.checkpoint import load_bundle
    from worldenv.eval.probe import load_probe

    audit = import_agent("return_audit")
    Args, closed_loop, policy_from = audit.Args, audit.closed_loop, audit.policy_from
    args = Args(checkpoint=str(reacher_dream_with_probe), episodes=2, threads=1)
    probe, still = load_probe(load_bundle(reacher_dream_with_probe)), policy_from("still", 2)
    real = closed_loop(still, args, "mujoco", probe, args.seed)
    dreamed = closed_loop(still, args, "dream", probe, args.seed, real["first_frames"])
    assert np.array_equal(dreamed["first_frames"], real["first_frames"])
    assert not np.array_equal(closed_loop(still, args, "dream", probe, args.seed)["first_frames"], real["first_frames"])


def test_audit_names_each_policy_once():
    audit = import_agent("return_audit")
    assert audit.short_names(
        [
            "still",
            "a/reacher-200k/mujoco-seed0.policy.zip",
            "runs/s16/cartpole-dream-seed0/policy.zip",
            "runs/s17/cartpole-dream-seed0/policy.zip",
        ]
    ) == ["still", "mujoco-seed0", "s16/cartpole-dream-seed0", "s17/cartpole-dream-seed0"]


def test_cartpole_audit_finds_when_each_world_shows_the_fall():
    """A synthetic episode: the frames show the pole past the fall angle at step 3, the
    world ended the episode after step 5: two steps unseen; nothing after the end counts."""
    audit = import_agent("return_audit")
    angles = np.array([[0.0, 0.1, 0.25, 0.1, 0.3, 0.5, 0.6], [0.0] * 7])
    cart = np.array([[0.0, 0.1, -0.3, 0.2, 0.1, 0.9, 0.9], [0.0] * 7])
    readings = np.stack([np.cos(angles), np.sin(angles), cart], axis=-1)
    running = np.array([[True] * 5 + [False] * 2, [True] * 7])
    episode = {"rewards": running.astype(float), "actions": np.ones((2, 7, 1)), "readings": readings, "running": running}
    per_episode, per_step = audit.cartpole_parts(episode)
    assert per_episode["length"].tolist() == [5, 7]
    assert per_episode["length_seen"].tolist() == [3, 7]  # the second pole never falls: seen to the end
    assert per_episode["ends_unseen"].tolist() == [2, 0]
    assert per_episode["cart_reach"].tolist() == [0.3, 0.0]  # the 0.9 after the episode's end does not count
    assert np.isnan(per_step["pole_angle"][0, 5:]).all() and per_step["pole_angle"][0, 2] == pytest.approx(0.25)
    summary = audit.summarize(per_episode, per_step)
    assert summary["per_step"]["running"] == [1.0] * 5 + [0.5] * 2
    assert summary["per_step"]["pole_angle"][5] == 0.0  # the mean over the episodes still running
    assert summary["first_episode"]["pole_angle"][5] is None


def test_cartpole_return_audit_runs_paired_episodes_in_both_worlds(tmp_path):
    import gymnasium as gym
    from dream_bundles import tiny_dream_bundle

    import worldenv  # noqa: F401

    bundle = tiny_dream_bundle(tmp_path / "cartpole", "cartpole", probe_outputs=3)
    summary = run_script(
        "return_audit.py",
        "--scene",
        "cartpole",
        "--checkpoint",
        str(bundle),
        "--policies",
        "still",
        "--episodes",
        "2",
        "--out",
        str(tmp_path / "audit"),
    )
    still = summary["policies"]["still"]
    lengths = []
    for episode in range(2):
        env, done, steps = gym.make("worldenv/Cartpole-v0"), False, 0
        env.reset(seed=1_000_000 + episode)  # the audit's episode seeds
        while not done:
            _, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
            steps, done = steps + 1, terminated or truncated
        lengths.append(steps)
    assert still["mujoco"]["length"] == pytest.approx(np.mean(lengths))
    assert still["dream"]["length"] == 1000  # the tiny dream never terminates: the time limit ends it
    saved = json.loads((tmp_path / "audit" / "summary.json").read_text())
    assert len(saved["policies"]["still"]["dream"]["first_episode"]["pole_angle"]) == 1000
    assert (tmp_path / "audit" / "per_step.png").stat().st_size > 5000


def test_policy_replay_primes_each_dream_with_the_actions_that_made_its_frames():
    replay = import_agent("policy_replay")
    actions = np.arange(1, 8, dtype=np.float32)[:, None]  # action t turns frame t into t + 1
    assert replay.padded(actions, -1, 3)[:, 0].tolist() == [0, 1, 2, 3]  # the reset frame: no action made it
    assert replay.padded(actions, -6, -2)[:, 0].tolist() == [0, 0, 0, 0]  # all before the episode began
    assert replay.padded(actions, 2, 5)[:, 0].tolist() == [3, 4, 5]
    args = replay.Args(context=4, horizon=2, every=3)
    episodes = [(np.zeros((9, 1)), actions[:8]), (np.zeros((6, 1)), actions[:5])]  # 8 and 5 steps
    # frames t - 3 .. t prime it, t + 1 .. t + 2 are dreamed: t from 3 to 6 in 3s; the short episode fits t = 3 only
    assert replay.replay_starts(episodes, args) == [(0, 3), (0, 6), (1, 3)]


def test_policy_replay_carry_is_one_for_a_faithful_dream_and_zero_for_a_frozen_one():
    replay = import_agent("policy_replay")
    start = {"pole_angle": np.array([0.0, 0.1, -0.1]), "cart_x": np.array([0.0, 0.2, 0.4])}
    real = {"pole_angle": np.array([0.05, 0.0, -0.2]), "cart_x": np.array([0.1, 0.1, 0.5])}
    faithful = replay.carry(start, real, real)
    assert faithful["cart_x"] == {"error": 0.0, "real_change": 0.1, "carry": 1.0}
    frozen = replay.carry(start, real, start)
    assert frozen["pole_angle"]["carry"] == 0.0 and frozen["pole_angle"]["error"] == pytest.approx(0.0833, abs=1e-4)
    wrapped = replay.carry({"pole_angle": np.array([3.1])}, {"pole_angle": np.array([-3.1])}, {"pole_angle": np.array([-3.1])})
    assert wrapped["pole_angle"]["real_change"] == pytest.approx(2 * np.pi - 6.2, abs=1e-4)  # across the wrap, not around


def test_policy_replay_runs_on_a_policys_real_episodes(tmp_path):
    from dream_bundles import tiny_dream_bundle

    bundle = tiny_dream_bundle(tmp_path / "cartpole", "cartpole", probe_outputs=3)
    summary = run_script(
        "policy_replay.py",
        "--checkpoint",
        str(bundle),
        "--policy",
        "random",
        "--episodes",
        "2",
        "--horizon",
        "2",
        "--every",
        "1",
        "--json",
        str(tmp_path / "replay.json"),
    )
    lengths = summary["episode_lengths"]
    assert summary["replays"] == sum(max(0, length - 4) for length in lengths)  # t from 3 while t + 2 <= length
    assert set(summary["quantities"]) == {"pole_angle", "cart_x"}
    assert json.loads((tmp_path / "replay.json").read_text())["replays"] == summary["replays"]


@pytest.mark.parametrize("observation", ["probe", "pixels"])
def test_shared_ppo_on_the_duo_dream_is_scored_in_mujoco(duo_dream_with_probe, observation, tmp_path):
    summary = run_script(
        "ppo_duo.py",
        "--checkpoint",
        str(duo_dream_with_probe),
        "--observation",
        observation,
        "--env-steps",
        "64",
        "--num-envs",
        "2",
        "--n-steps",
        "32",
        "--eval-every",
        "1000",
        "--eval-episodes",
        "1",
        "--max-cycles",
        "8",
        "--out",
        str(tmp_path),
    )
    assert summary["env_steps"] == 64 and len(summary["real_return_per_agent"]) == 2
    assert np.isfinite(summary["dream_team_return"])
    assert (tmp_path / "duo-dream-seed0" / "policy.zip").exists()
    if observation == "probe":  # the strip script acts with a probe policy, as the agents do
        strip = tmp_path / "strip.png"
        result = subprocess.run(
            [
                sys.executable,
                str(AGENTS.parent / "benchmarks" / "duo_strip.py"),
                "--checkpoint",
                str(duo_dream_with_probe),
                "--policy",
                str(tmp_path / "duo-dream-seed0" / "policy.zip"),
                "--steps",
                "0",
                "2",
                "--scale",
                "1",
                "--out",
                str(strip),
            ],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert strip.exists() and strip.stat().st_size > 0


def first_episode_length(venv, action_dim: int) -> int:
    """Steps of a one-env SB3 ``venv``'s first episode under zero actions; closes it."""
    venv.reset()
    steps, done = 0, False
    while not done:
        done = bool(venv.step(np.zeros((1, action_dim), np.float32))[2][0])
        steps += 1
    venv.close()
    return steps


def test_duo_dream_training_episodes_end_at_the_imagination_horizon(duo_dream_with_probe):
    duo = import_agent("ppo_duo")
    lengths = {}
    for dream_cycles in (None, 3):
        args = duo.Args(checkpoint=str(duo_dream_with_probe), num_envs=1, max_cycles=5, dream_cycles=dream_cycles)
        lengths[dream_cycles] = first_episode_length(duo.joint_env(args), 4)
    assert lengths == {None: 5, 3: 3}


def test_ppo_dream_training_episodes_start_mid_episode_and_end_at_the_imagination_horizon(reacher_dream):
    ppo = import_agent("ppo_dream")
    args = ppo.Args(checkpoint=str(reacher_dream), observation="pixels", dream_steps=3, start_contexts=4, start_within=20)
    training, scored = ppo.frames_env(args, "dream", 1, 0, training=True), ppo.frames_env(args, "dream", 1, 0)
    assert training.venv.venv.dream.contexts.offsets.max() > 0  # windows from inside their episodes
    assert scored.venv.venv.dream.contexts.count == 6  # scores start from the bundle's own bank
    assert [first_episode_length(venv, 2) for venv in (training, scored)] == [3, 50]  # scored: the reacher's own length
    with pytest.raises(ValueError, match="--world mujoco"):
        ppo.run(ppo.Args(world="mujoco", dream_steps=3))


def test_train_speed_times_both_worlds_at_each_batch_and_takes_each_at_its_best(reacher_dream_with_probe, tmp_path):
    summary = run_script(
        "train_speed.py",
        "--checkpoint",
        str(reacher_dream_with_probe),
        "--num-envs",
        "1",
        "2",
        "--env-steps",
        "64",
        "--n-steps",
        "16",
        "--batch-size",
        "32",
        "--rounds",
        "2",
        "--sampling-steps",
        "2",
        "--out",
        str(tmp_path),
    )
    assert set(summary["rates"]) == {"dream", "mujoco"}
    assert all(len(summary["rates"][world][n]) == 2 for world in ("dream", "mujoco") for n in ("1", "2"))
    medians, best = summary["median"], summary["best_num_envs"]
    assert all(medians[world][str(best[world])] == max(medians[world].values()) for world in ("dream", "mujoco"))
    assert summary["dream_over_mujoco"] == medians["dream"][str(best["dream"])] / medians["mujoco"][str(best["mujoco"])]
    saved = json.loads((tmp_path / "train_speed.json").read_text())
    assert saved["rates"] == summary["rates"] and saved["args"]["sampling_steps"] == 2
    bad = subprocess.run(
        [sys.executable, str(AGENTS / "train_speed.py"), "--rounds", "0"], env=ENV, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "--rounds >= 1" in bad.stderr


def test_scoring_during_training_does_not_change_the_policy_trained():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    common = import_agent("common")
    torch.set_num_threads(1)

    def draw_everything(steps):  # what building a scoring env and scoring may draw
        random.random(), np.random.rand(), torch.nn.Linear(4, 4), torch.rand(3)

    def trained(callback) -> torch.Tensor:
        agent = PPO(
            "MlpPolicy",
            make_vec_env("CartPole-v1", n_envs=2, seed=0),
            n_steps=32,
            batch_size=32,
            n_epochs=2,
            seed=0,
            device="cpu",
        )
        agent.learn(total_timesteps=192, callback=callback)
        return torch.nn.utils.parameters_to_vector(agent.policy.parameters()).detach()

    quiet = trained(common.ScoreEvery(10**9, draw_everything))
    scored = trained(common.ScoreEvery(64, draw_everything))
    assert torch.equal(quiet, scored)


def test_agent_scripts_explain_themselves():
    for name in ("ppo_dream.py", "plan.py", "ppo_duo.py", "return_audit.py", "train_speed.py", "policy_replay.py"):
        result = subprocess.run([sys.executable, str(AGENTS / name), "--help"], env=ENV, capture_output=True, text=True)
        assert result.returncode == 0 and "--seed" in result.stdout
    as_module = subprocess.run(
        [sys.executable, "-m", "agents.plan", "--help"], env=ENV, capture_output=True, text=True, cwd=AGENTS.parent.parent
    )  # anywhere: agents/ is installed with worldenv
    assert as_module.returncode == 0 and "--keep-elites, --no-keep-elites" in as_module.stdout
    bad = subprocess.run(
        [sys.executable, str(AGENTS / "ppo_dream.py"), "--world", "moon"], env=ENV, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "invalid choice 'moon' for argument '--world'" in bad.stderr


# What a placeholder in a documented command stands for, by the flag it follows.
PLACEHOLDERS = {
    "--world": "dream",
    "--seed": "0",
    "--candidates": "8",
    "--survival": "soft",
    "--policy": "policy.zip",
    "--policies": "policy.zip",
    "--out": "out",
}


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """Every ``python agents/<script>.py ...`` the docs quote, as (where, script, arguments):
    a placeholder (W, S, P..., OUT) given a value its flag takes, an optional ``[...]`` part kept."""
    docs = AGENTS.parent / "docs"
    commands = []
    for page in [docs / "agents.md", *sorted((docs / "experiments").glob("*.md"))]:
        for match in re.finditer(r"python agents/(\w+)\.py([^`\n]*)", page.read_text()):
            words, flag = [], None
            for word in shlex.split(match.group(2).replace("[", " ").replace("]", " ")):
                if re.fullmatch(r"[A-Z]+(\.\.\.)?", word):
                    word = PLACEHOLDERS[flag]
                flag = word if word.startswith("--") else flag
                words.append(word)
            commands.append((f"{page.name}: {match.group(0)}", match.group(1), words))
    return commands


def test_every_documented_command_parses():
    """The flags the docs quote are the flags the scripts take."""
    from agents.common import parse

    commands = documented_commands()
    assert {script for _, script, _ in commands} >= {
        "ppo_dream",
        "plan",
        "return_audit",
        "policy_replay",
        "ppo_duo",
        "train_speed",
        "results_table",
    }
    for where, script, arguments in commands:
        try:
            parse(import_agent(script).Args, arguments)
        except SystemExit as error:
            raise AssertionError(f"does not parse: {where}") from error


def test_colored_noise_is_standard_and_smoother_with_a_larger_exponent():
    plan = import_agent("plan")
    lag1 = {}
    for beta in (0.0, 1.0, 2.0):
        noise = plan.colored_noise(beta, (4000, 8, 2), np.random.default_rng(0))
        assert noise.shape == (4000, 8, 2) and noise.dtype == np.float32
        assert np.allclose(noise.std(axis=0), 1, atol=0.06) and abs(noise.mean()) < 0.03
        lag1[beta] = float(np.mean(noise[:, 1:] * noise[:, :-1]))
    assert abs(lag1[0.0]) < 0.03 and lag1[0.0] < lag1[1.0] - 0.2 and lag1[1.0] < lag1[2.0] - 0.1, lag1
    # White noise is drawn as before the option existed: earlier runs reproduce.
    assert np.array_equal(
        plan.colored_noise(0.0, (3, 4, 2), np.random.default_rng(1)),
        np.random.default_rng(1).standard_normal((3, 4, 2)).astype(np.float32),
    )


class ScriptedWorld:
    """Scores the first iteration's plans by their first action and every later batch as
    hopeless; records what it was asked to imagine."""

    def __init__(self, iterations: int):
        self.iterations, self.calls = iterations, []

    def returns(self, present, plans, seed):
        self.calls.append(plans.copy())
        first = len(self.calls) % self.iterations == 1
        return plans[:, 0, 0].astype(np.float64) if first else np.full(len(plans), -1e9)


@pytest.mark.parametrize("keep", [False, True])
def test_kept_elites_compete_again_unimagined_and_carry_to_the_next_step(keep):
    plan = import_agent("plan")
    args = plan.Args(imagine="mujoco", candidates=6, horizon=3, iterations=2, elites=2, keep_elites=keep, seed=3)
    planner = plan.CEMPlanner(args)
    planner.world = world = ScriptedWorld(args.iterations)
    planner.reset()
    present = None  # the scripted world does not look at the scene
    planner.act(present, step=0)
    assert [len(plans) for plans in world.calls] == [6, 6]  # kept elites cost no imagined step
    first = world.calls[0]
    best_of_first = first[np.argsort(first[:, 0, 0])[-2:]]
    if keep:  # the later batch was hopeless, so the first iteration's elites stay the elites
        assert np.allclose(planner.mean, plan.shifted(best_of_first.mean(0)))
        assert np.array_equal(planner.carried, plan.shifted(best_of_first))
    else:
        assert not np.allclose(planner.mean, plan.shifted(best_of_first.mean(0)))
        assert len(planner.carried) == 0
    planner.act(present, step=1)
    carried_now = world.calls[2][1:3]  # after the current mean, the shifted elites are candidates
    assert np.array_equal(carried_now, plan.shifted(best_of_first)) == keep


def test_imagined_returns_count_rewards_while_the_episode_runs():
    """Hard: rewards up to and including the step the termination head ends (a reward of the
    ending step counts, as in MuJoCo); soft: each reward weighed by the probability that no
    earlier step ended the episode."""
    plan = import_agent("plan")
    rewards = torch.ones(3, 2)
    logits = torch.tensor([[-20.0, 0.0], [3.0, 0.0], [-20.0, 0.0]])  # plan 0 ends at step 2; plan 1 at even odds
    hard = plan.imagined_returns(rewards, logits, "hard")
    soft = plan.imagined_returns(rewards, logits, "soft")
    assert torch.allclose(hard, torch.tensor([2.0, 3.0]))
    running = torch.sigmoid(torch.tensor(-3.0))
    assert torch.allclose(soft, torch.tensor([2.0 + running, 1.0 + 0.5 + 0.25]), atol=1e-6)
