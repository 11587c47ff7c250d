"""The `worldenv` command: help for every subcommand, and small real runs."""

import subprocess
import sys

import imageio.v3 as iio
import pytest

from worldenv.cli import main

SUBCOMMANDS = ["collect", "inspect", "bench", "demo"]


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


def test_demo_writes_videos_and_contact_sheet(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path), "--episodes", "2", "--steps", "8", "--workers", "1")
    assert result.returncode == 0, result.stderr
    for scene in ("reacher", "cartpole", "panorama", "duo"):
        video = iio.imread(tmp_path / f"{scene}.mp4")
        assert video.ndim == 4 and video.shape[1:] == (64, 64, 3) and 2 <= len(video) <= 9
    sheet = iio.imread(tmp_path / "scenes.png")
    assert sheet.shape[0] > 4 * 64 and sheet.shape[2] == 3
    inspect = run_cli("inspect", str(tmp_path / "data" / "reacher"))
    assert inspect.returncode == 0 and "all checksums verified" in inspect.stdout


def test_bench_prints_tables(tmp_path):
    result = run_cli("bench", "scenes", "--steps", "20")
    assert result.returncode == 0, result.stderr
    for scene in ("reacher", "cartpole", "panorama", "duo"):
        assert f"| {scene} |" in result.stdout
    run_cli("collect", "--scene", "reacher", "--episodes", "2", "--steps", "10", "--workers", "1", "--out", str(tmp_path / "d"))
    result = run_cli("bench", "sampler", "--dataset", str(tmp_path / "d"), "--length", "4", "--batch", "8")
    assert result.returncode == 0, result.stderr
    assert "windows/s" in result.stdout
