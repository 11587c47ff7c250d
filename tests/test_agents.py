"""Smoke runs of the agent scripts (agents/), each in a subprocess with a tiny budget
on a tiny dream bundle: they run, score in MuJoCo and write what they promise."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

AGENTS = Path(__file__).parent.parent / "agents"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_script(name: str, *arguments: str) -> dict:
    result = subprocess.run([sys.executable, str(AGENTS / name), "--threads", "1", *arguments], env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ppo_in_the_dream_is_scored_in_mujoco(reacher_dream, tmp_path):
    summary = run_script("ppo_dream.py", "--checkpoint", str(reacher_dream), "--env-steps", "128", "--num-envs", "2",
                         "--n-steps", "32", "--eval-every", "64", "--eval-episodes", "2", "--out", str(tmp_path))
    run = tmp_path / "reacher-dream-seed0"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines] == [64, 128, 128]
    assert all(line["real_return"] < 0 and line["dream_return"] is not None for line in lines)  # reacher: negative distances
    assert summary["env_steps"] == 128 and summary["train_env_steps_per_s"] > 0
    assert (run / "policy.zip").stat().st_size > 0 and (run / "real_episode.mp4").stat().st_size > 0


def test_ppo_baselines_train_in_mujoco_and_act_at_random(reacher_dream, tmp_path):
    mujoco = run_script("ppo_dream.py", "--world", "mujoco", "--checkpoint", str(reacher_dream), "--env-steps", "128",
                        "--num-envs", "2", "--n-steps", "32", "--eval-every", "1000", "--eval-episodes", "1", "--no-video",
                        "--out", str(tmp_path))
    random = run_script("ppo_dream.py", "--world", "random", "--checkpoint", str(reacher_dream), "--eval-episodes", "2",
                        "--out", str(tmp_path))
    assert mujoco["env_steps"] == 128 and mujoco["train_env_return"] is not None  # Monitor saw training episodes
    still = run_script("ppo_dream.py", "--world", "still", "--checkpoint", str(reacher_dream), "--eval-episodes", "2",
                       "--out", str(tmp_path))
    assert random["env_steps"] == 0 and random["real_return"] < 0
    assert still["real_return"] > random["real_return"]  # an arm that never moves pays no control cost
    assert (tmp_path / "reacher-random-seed0" / "summary.json").exists()
    table = subprocess.run([sys.executable, str(AGENTS / "results_table.py"), "--runs", str(tmp_path)], env=ENV,
                           capture_output=True, text=True, check=True).stdout
    assert "| reacher | mujoco | 1 | 128 |" in table and "| reacher | - (zero actions) | 1 | 0 |" in table


def test_planner_acts_in_mujoco_from_imagined_returns(reacher_dream, tmp_path):
    summary = run_script("plan.py", "--checkpoint", str(reacher_dream), "--episodes", "1", "--max-steps", "3",
                         "--candidates", "4", "--horizon", "2", "--elites", "2", "--out", str(tmp_path))
    assert len(summary["planner_returns"]) == 1 and summary["seconds_per_real_step"] > 0
    assert summary["imagined_steps_per_real_step"] == 4 * 2 * 2
    assert (tmp_path / "plan-reacher-seed0" / "summary.json").exists()


def test_shared_ppo_on_the_duo_dream_is_scored_in_mujoco(duo_dream, tmp_path):
    summary = run_script("ppo_duo.py", "--checkpoint", str(duo_dream), "--env-steps", "64", "--num-envs", "2",
                         "--n-steps", "32", "--eval-every", "1000", "--eval-episodes", "1", "--max-cycles", "8",
                         "--out", str(tmp_path))
    assert summary["env_steps"] == 64 and len(summary["real_return_per_agent"]) == 2
    assert np.isfinite(summary["dream_team_return"])
    assert (tmp_path / "duo-dream-seed0" / "policy.zip").exists()


def test_agent_scripts_explain_themselves():
    for name in ("ppo_dream.py", "plan.py", "ppo_duo.py"):
        result = subprocess.run([sys.executable, str(AGENTS / name), "--help"], env=ENV, capture_output=True, text=True)
        assert result.returncode == 0 and "--seed" in result.stdout
    bad = subprocess.run([sys.executable, str(AGENTS / "ppo_dream.py"), "--world", "moon"], env=ENV, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "invalid choice: 'moon'" in bad.stderr
