"""`worldenv eval` end to end on a tiny bundle trained here: report, plot, baseline."""

import json
import subprocess
import sys

import numpy as np
import pytest
from dream_bundles import tiny_trained_bundle

from worldenv.eval.evaluate import EvalConfig, real_rollouts
from worldenv.eval.probe import probe_errors, probe_readings, probe_targets


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return tiny_trained_bundle(tmp_path_factory.mktemp("eval"))


def test_eval_cli_writes_report_and_plot(tiny_bundle, tmp_path):
    report_path, plot_path = tmp_path / "report.json", tmp_path / "curves.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worldenv.cli",
            "eval",
            "--checkpoint",
            str(tiny_bundle),
            "--episodes",
            "1",
            "--horizon",
            "5",
            "--steps",
            "1",
            "--json",
            str(report_path),
            "--plot",
            str(plot_path),
            "--update-card",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| 5 |" in result.stdout and "tokenizer (same frames)" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["horizons"] == [1, 5] and set(report["policies"]) == {"uniform", "smooth", "goal"}
    one = report["policies"]["goal"]
    for name in ("model", "copy_last"):
        entry = one[name]["5"]
        for key in ("psnr", "ssim", "foreground_iou", "joint_angles", "fingertip", "target"):
            assert np.isfinite(entry[key]), (name, key)
    assert "reward_abs_error" in one["model"]["1"] and "termination_accuracy" in one["model"]["1"]
    assert plot_path.stat().st_size > 10_000
    card = (tiny_bundle / "card.md").read_text()
    assert "## Evaluation against MuJoCo" in card and "| 5 |" in card and "--update-card" in card
    assert "`python -m worldenv.train tokenizer --config" in card and "--update-card" in card


def test_eval_on_a_read_only_bundle_writes_and_shows_the_report_then_names_the_directory(
    tiny_bundle, tmp_path, monkeypatch, capsys
):
    import os
    import shutil

    from worldenv.cli import main

    bundle, report_path = tmp_path / "bundle", tmp_path / "report.json"
    shutil.copytree(tiny_bundle, bundle)
    before = {f.name: f.read_bytes() for f in bundle.iterdir()}
    access = os.access
    # Tests run as root, whom chmod does not stop: os.access is what a read-only directory answers.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: path != bundle and access(path, mode, **kw))
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "eval",
                "--checkpoint",
                str(bundle),
                "--episodes",
                "1",
                "--horizon",
                "2",
                "--steps",
                "1",
                "--json",
                str(report_path),
                "--update-card",
            ]
        )
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert f"--update-card: could not record the evaluation in {bundle}" in err and f"{bundle} is not writable" in err
    assert f"the report is in {report_path}" in err
    assert json.loads(report_path.read_text())["horizons"] == [1] and "| 1 |" in out  # the work is kept
    assert {f.name: f.read_bytes() for f in bundle.iterdir()} == before


def test_eval_refuses_a_bundle_without_probe(tmp_path, tiny_bundle):
    import shutil

    from worldenv.checkpoint import load_bundle
    from worldenv.eval.evaluate import evaluate

    bundle = load_bundle(tiny_bundle)
    assert "probe" in bundle.components
    copy = tmp_path / "no_probe"
    shutil.copytree(tiny_bundle, copy)
    (copy / "probe.safetensors").unlink()
    records = json.loads((copy / "bundle.json").read_text())
    records["components"].pop("probe")
    (copy / "bundle.json").write_text(json.dumps(records))
    with pytest.raises(ValueError, match="train it with `worldenv train probe"):
        evaluate(copy, EvalConfig(episodes=1, horizon=2))


def test_real_rollouts_are_held_out_and_aligned():
    config = EvalConfig(episodes=2, horizon=3, context=2)
    real = real_rollouts("reacher", "goal", config, 64, 64)
    assert real["frames"].shape == (2, 5, 64, 64, 3) and real["actions"].shape == (2, 5, 2)
    assert np.all(real["actions"][:, 0] == 0)
    assert real["valid"].all()


def test_probe_errors_are_in_task_units():
    states = {"qpos": np.array([[0.1, -3.1, 0.0, 0.0]]), "task": np.array([[0.1, 0.0, 0.2, 0.0]])}
    truth = probe_targets("reacher", states)
    moved = {"qpos": np.array([[0.3, 3.1, 0.0, 0.0]]), "task": np.array([[0.1, 0.3, 0.2, 0.0]])}
    errors = probe_errors("reacher", probe_targets("reacher", moved), truth)
    # Joint errors 0.2 and 2*pi - 6.2 (wrapped, not 6.2): mean 0.1416.
    assert errors["joint_angles"][0] == pytest.approx((0.2 + (2 * np.pi - 6.2)) / 2, abs=1e-6)
    assert errors["fingertip"][0] == pytest.approx(0.3) and errors["target"][0] == pytest.approx(0.0)


def test_probe_readings_give_back_the_task_state():
    states = {"qpos": np.array([[0.4, -0.25]]), "task": np.zeros((1, 2))}
    readings = probe_readings("cartpole", probe_targets("cartpole", states))
    assert readings["pole_angle"][0, 0] == pytest.approx(-0.25) and readings["cart_x"][0, 0] == pytest.approx(0.4)


def test_compare_scores_models_on_the_same_episodes_and_times_them(tiny_bundle, tmp_path):
    contexts = subprocess.run(
        [sys.executable, "-m", "worldenv.cli", "contexts", "--checkpoint", str(tiny_bundle), "--count", "2", "--length", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert contexts.returncode == 0, contexts.stderr[-2000:]
    report_path, plot_path = tmp_path / "compare.json", tmp_path / "frontier.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worldenv.cli",
            "compare",
            "--checkpoint",
            str(tiny_bundle),
            "--models",
            "teacher@1",
            "teacher@2",
            "teacher@1+frame",
            "--episodes",
            "1",
            "--horizon",
            "10",
            "--speed-envs",
            "1",
            "2",
            "--json",
            str(report_path),
            "--plot",
            str(plot_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert sorted(report["models"]) == ["teacher@1", "teacher@1+frame", "teacher@2"] and report["horizons"] == [1, 10]
    one, two, reencoded = (report["models"][name] for name in ("teacher@1", "teacher@2", "teacher@1+frame"))
    assert one["speed"]["1"]["evaluations"] == 2 and two["speed"]["1"]["evaluations"] == 3
    assert one["scores"]["1"]["psnr"] != two["scores"]["1"]["psnr"]  # different samplers, same episodes
    # the first dreamed frame comes before any commit of a dreamed one; later frames see what was committed
    assert reencoded["commit"] == "frame" and reencoded["scores"]["1"]["psnr"] == one["scores"]["1"]["psnr"]
    assert reencoded["scores"]["10"]["psnr"] != one["scores"]["10"]["psnr"]
    assert "| teacher | 2 | 3 |" in result.stdout and "| copy last frame |" in result.stdout
    assert "| teacher (commits the frame) | 1 | 2 |" in result.stdout and "networks in float32" in result.stdout
    assert plot_path.stat().st_size > 5000
    bad = subprocess.run(
        [sys.executable, "-m", "worldenv.cli", "compare", "--checkpoint", str(tiny_bundle), "--models", "teacher"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "--models: expected a model like teacher@8" in bad.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "worldenv.cli",
            "compare",
            "--checkpoint",
            str(tiny_bundle),
            "--models",
            "teacher@1",
            "--serve",
            "teacher@3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "--serve: expected one of --models" in bad.stderr


def test_eval_and_compare_take_the_networks_dtype(tiny_bundle, tmp_path):
    """--dtype bfloat16: the dream's networks in bfloat16, recorded in the report and the table."""
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worldenv.cli",
            "eval",
            "--checkpoint",
            str(tiny_bundle),
            "--episodes",
            "1",
            "--horizon",
            "2",
            "--steps",
            "1",
            "--dtype",
            "bfloat16",
            "--json",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["dtype"] == "bfloat16" and report["config"]["dtype"] == "bfloat16"
    assert np.isfinite(report["all"]["model"]["1"]["psnr"])
    contexts = subprocess.run(
        [sys.executable, "-m", "worldenv.cli", "contexts", "--checkpoint", str(tiny_bundle), "--count", "2", "--length", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert contexts.returncode == 0, contexts.stderr[-2000:]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worldenv.cli",
            "compare",
            "--checkpoint",
            str(tiny_bundle),
            "--models",
            "teacher@1",
            "--episodes",
            "1",
            "--horizon",
            "2",
            "--speed-envs",
            "1",
            "--dtype",
            "bfloat16",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "networks in bfloat16" in result.stdout and "| teacher | 1 | 2 |" in result.stdout


def test_compare_serve_sets_what_the_dream_uses_by_default(tiny_bundle):
    from worldenv.checkpoint import load_bundle
    from worldenv.envs import DiffusionWorldEnv

    if "contexts" not in load_bundle(tiny_bundle).components:
        subprocess.run(
            [sys.executable, "-m", "worldenv.cli", "contexts", "--checkpoint", str(tiny_bundle), "--count", "2", "--length", "3"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worldenv.cli",
            "compare",
            "--checkpoint",
            str(tiny_bundle),
            "--models",
            "teacher@2g1.5",
            "--episodes",
            "1",
            "--horizon",
            "2",
            "--speed-envs",
            "1",
            "--serve",
            "teacher@2g1.5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| teacher (action guidance 1.5) | 2 | 5 |" in result.stdout  # 2 guided steps: 4 evaluations, 1 commit
    bundle = load_bundle(tiny_bundle)
    serving = bundle.metadata["serving"]
    assert (serving["model"], serving["sampling_steps"], serving["action_guidance"]) == ("teacher", 2, 1.5)
    assert "## What the dream uses" in bundle.card and "action guidance 1.5" in bundle.card
    env = DiffusionWorldEnv(checkpoint=tiny_bundle)
    assert env.dream.component == "teacher" and env.dream.model.sampling_steps == 2
    assert env.dream.model.action_guidance == 1.5
    assert DiffusionWorldEnv(checkpoint=tiny_bundle, sampling_steps=5).dream.model.sampling_steps == 5
    assert DiffusionWorldEnv(checkpoint=tiny_bundle, action_guidance=1.0).dream.model.action_guidance == 1.0


def test_horizons_past_every_episode_are_scored_on_the_policies_that_reach_them():
    """A cartpole under uniform actions falls within ten steps; the balancing policy goes on:
    horizon 10 is the balancing policy's alone, not NaN."""
    from worldenv.eval.evaluate import average_policies, scored_horizons

    def scores(**by_horizon):
        return {name: {h.lstrip("h"): {"psnr": v} for h, v in by_horizon.items()} for name in ("model", "copy_last")}

    averaged = average_policies({"uniform": scores(h1=20.0), "goal": scores(h1=30.0, h10=24.0)})
    assert averaged["model"] == {"1": {"psnr": 25.0}, "10": {"psnr": 24.0}}
    assert scored_horizons([1, 5, 10, 200], averaged["model"]) == [1, 10]
