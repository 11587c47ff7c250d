"""The `worldenv` command: help for every subcommand, and small real runs."""

import json
import subprocess
import sys

import imageio.v3 as iio
import pytest

from worldenv.cli import main

SUBCOMMANDS = ["collect", "inspect", "train", "contexts", "eval", "record", "bench", "demo"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worldenv.cli", *args], capture_output=True, text=True, timeout=300)


def test_top_level_help_lists_subcommands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in SUBCOMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: worldenv {command}" in capsys.readouterr().out


def _commands() -> dict:
    """name -> (its line in ``worldenv --help``, its own parser)."""
    import argparse

    from worldenv.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {line.dest: (line.help, commands.choices[line.dest]) for line in commands._choices_actions}


def test_each_help_names_what_its_command_does():
    """A command's line in ``worldenv --help`` names every choice of what it does (a positional
    or required option with choices), and its own ``--help`` has a description."""
    commands = _commands()
    assert set(SUBCOMMANDS) <= set(commands)
    for name, (line, parser) in commands.items():
        assert parser.description, f"worldenv {name} --help has no description"
        for action in parser._actions:
            if action.choices and (not action.option_strings or action.required):
                missing = [choice for choice in action.choices if choice not in line]
                assert not missing, f"worldenv --help: {name!r} accepts {missing} but its line does not say so: {line!r}"
    assert "memory" in commands["eval"][0] and "probe" in commands["train"][0] and "long" in commands["bench"][0]


def test_contexts_refuses_a_read_only_bundle_before_any_work(reacher_dream, tmp_path, monkeypatch, capsys):
    import os
    import shutil

    import worldenv.contexts

    bundle = tmp_path / "bundle"
    shutil.copytree(reacher_dream, bundle)
    access = os.access
    # Tests run as root, whom chmod does not stop: os.access is what a read-only directory answers.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: path != bundle and access(path, mode, **kw))

    def no_work(*args, **kwargs):
        raise AssertionError("contexts recorded episodes for a bundle it cannot write")

    monkeypatch.setattr(worldenv.contexts, "record_start_contexts", no_work)
    with pytest.raises(SystemExit) as exit_info:
        main(["contexts", "--checkpoint", str(bundle), "--count", "2"])
    assert exit_info.value.code == 2
    assert f"{bundle}: cannot update the bundle, {bundle} is not writable" in capsys.readouterr().err


def test_collect_refuses_an_unusable_out_or_worker_count(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for flags, message in [
        (["--out", str(tmp_path / "file" / "data")], "is a file; expected a directory path"),
        (["--out", str(tmp_path / "w"), "--workers", "0"], "expected a positive number of worker processes"),
        (["--out", str(tmp_path / "w"), "--width", "17"], "expected an even width >= 16 pixels, got 17"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["collect", "--scene", "reacher", "--episodes", "1", "--steps", "2", "--workers", "1", *flags])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing left behind


def test_console_script_is_installed():
    import shutil
    from pathlib import Path

    script = Path(sys.executable).parent / "worldenv"
    assert script.exists() or shutil.which("worldenv"), "pip install should put the `worldenv` command on PATH"


def test_bad_input_exits_2_with_a_message():
    result = run_cli("collect", "--scene", "hopper", "--episodes", "2", "--out", "unused")
    assert result.returncode == 2
    assert "unknown scene 'hopper'" in result.stderr
    result = run_cli("bench", "sampler")
    assert result.returncode == 2 and "--dataset" in result.stderr
    result = run_cli("eval", "--checkpoint", "unused", "--action-guidance", "0")
    assert result.returncode == 2 and "expected action_guidance to be a positive number" in result.stderr


def test_demo_writes_dream_and_ground_truth_videos(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path), "--steps", "6", "--episodes", "2", "--episode-steps", "8", "--workers", "1")
    assert result.returncode == 0, result.stderr
    for scene in ("reacher", "cartpole", "duo", "panorama"):
        video = iio.imread(tmp_path / f"dream_{scene}.mp4")
        assert video.shape == (4 + 6, 256, (3 * 64 + 4) * 4, 3)  # the expert keeps the pole up for 6 steps
    assert result.stdout.count("frames/s") == 8 and "h=5" in result.stdout
    for scene in ("reacher", "cartpole", "panorama", "duo"):
        video = iio.imread(tmp_path / f"{scene}.mp4")
        assert video.ndim == 4 and video.shape[1:] == (64, 64, 3) and 2 <= len(video) <= 9
    sheet = iio.imread(tmp_path / "scenes.png")
    assert sheet.shape[0] > 4 * 64 and sheet.shape[2] == 3
    inspect = run_cli("inspect", str(tmp_path / "data" / "reacher"))
    assert inspect.returncode == 0 and "all checksums verified" in inspect.stdout


@pytest.mark.parametrize("suffix", ["mp4", "gif"])
def test_record_writes_a_readable_side_by_side_video(reacher_dream, tmp_path, suffix):
    out = tmp_path / f"dream.{suffix}"
    result = run_cli(
        "record", "--checkpoint", str(reacher_dream), "--policy", "random", "--steps", "5", "--context", "3", str(out)
    )
    assert result.returncode == 0, result.stderr
    video = iio.imread(out)
    assert video.shape[0] == 3 + 5 and video.shape[1:3] == (256, (3 * 64 + 4) * 4)
    assert "PSNR" in result.stdout and "dream/MuJoCo" in result.stdout


def test_record_refuses_bad_arguments(reacher_dream, tmp_path):
    result = run_cli("record", "--checkpoint", str(reacher_dream), str(tmp_path / "out.avi"))
    assert result.returncode == 2 and "expected a .mp4 or .gif" in result.stderr
    result = run_cli("record", "--checkpoint", str(reacher_dream), "--policy", "nonsense", str(tmp_path / "o.mp4"))
    assert result.returncode == 2 and "expected random" in result.stderr
    result = run_cli("record", "--checkpoint", str(tmp_path), str(tmp_path / "o.mp4"))
    assert result.returncode == 2 and "bundle.json: missing" in result.stderr


def test_bench_prints_tables(tmp_path):
    result = run_cli("bench", "scenes", "--steps", "20")
    assert result.returncode == 0, result.stderr
    for scene in ("reacher", "cartpole", "panorama", "duo"):
        assert f"| {scene} |" in result.stdout
    run_cli("collect", "--scene", "reacher", "--episodes", "2", "--steps", "10", "--workers", "1", "--out", str(tmp_path / "d"))
    result = run_cli("bench", "sampler", "--dataset", str(tmp_path / "d"), "--length", "4", "--batch", "8")
    assert result.returncode == 0, result.stderr
    assert "windows/s" in result.stdout


def test_bench_dream_measures_batches_beside_mujoco(reacher_dream, tmp_path):
    result = run_cli(
        "bench",
        "dream",
        "--checkpoint",
        str(reacher_dream),
        "--envs",
        "1",
        "3",
        "--sampling-steps",
        "1",
        "--seconds",
        "0.1",
        "--steps",
        "20",
        "--dtype",
        "auto",
        "bfloat16",
        "--commit",
        "frame",
        "--rounds",
        "2",
        "--json",
        str(tmp_path / "dream.json"),
    )
    assert result.returncode == 0, result.stderr
    assert "| MuJoCo step+render (1 process) | - | 1 |" in result.stdout
    assert "| teacher@1+frame | float32 | 3 | 2 |" in result.stdout  # auto: float32 on the CPU
    assert "| teacher@1+frame | bfloat16 | 3 | 2 |" in result.stdout
    saved = json.loads((tmp_path / "dream.json").read_text())
    assert saved["command"].startswith("worldenv bench dream") and saved["mujoco_env_steps_per_s"] > 0
    assert [(r["dtype"], r["envs"]) for r in saved["dreams"]] == [
        ("float32", 1),
        ("float32", 3),
        ("bfloat16", 1),
        ("bfloat16", 3),
    ]
    assert all(r["env_steps_per_s"] > 0 and r["serving"] == "teacher@1+frame" for r in saved["dreams"])
    # Two rounds, interleaved with MuJoCo's: medians, and each ratio's range over the rounds.
    assert len(saved["mujoco_rounds"]) == 2 and all(len(r["rounds"]) == 2 for r in saved["dreams"])
    for r in saved["dreams"]:
        low, high = r["vs_mujoco_range"]
        assert low <= r["vs_mujoco"] <= high and low == min(d / m for d, m in zip(r["rounds"], saved["mujoco_rounds"]))
    assert "medians of 2 interleaved rounds" in result.stdout


def test_record_plays_a_trained_sb3_policy(reacher_dream, tmp_path):
    from stable_baselines3 import PPO

    from worldenv.envs.sb3 import DreamVecEnv

    model = PPO(
        "CnnPolicy",
        DreamVecEnv(2, checkpoint=reacher_dream, max_episode_steps=8),
        n_steps=8,
        batch_size=16,
        n_epochs=1,
        seed=0,
        device="cpu",
    )
    model.learn(16)
    model.save(tmp_path / "agent.zip")
    out = tmp_path / "agent.gif"
    result = run_cli(
        "record", "--checkpoint", str(reacher_dream), "--policy", str(tmp_path / "agent.zip"), "--steps", "4", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert iio.imread(out).shape[0] == 4 + 4


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["inspect", "nowhere"], []),  # computes nothing with torch: left alone
        (["eval", "--checkpoint", "nowhere"], [1]),  # dreams: one thread unless told
        (["--threads", "2", "record", "out.mp4", "--checkpoint", "nowhere"], [2]),
        (["--threads", "2", "train", "teacher", "--config", "nowhere.yaml"], [2]),
    ],
)
def test_threads_default_to_one_for_dreams_and_follow_the_flag(argv, expected, monkeypatch):
    import os

    import torch

    chosen = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        main(argv)
    except SystemExit:  # each command then fails on its missing input
        pass
    assert chosen[:1] == expected
    assert os.environ["OMP_NUM_THREADS"] == ("2" if "--threads" in argv else "1")  # what training reads


def test_threads_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        main(["--threads", "0", "inspect", "nowhere"])
    assert "--threads: expected a positive number of threads, got 0" in capsys.readouterr().err
