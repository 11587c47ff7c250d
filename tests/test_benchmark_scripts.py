"""The diagnostic scripts in benchmarks/ run end to end on a tiny bundle."""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
from dream_bundles import tiny_dream_bundle

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_action_response_gain_is_the_least_squares_factor():
    from worldenv.eval.action_response import response_gain

    real = np.array([0.1, -0.2, 0.4])
    assert response_gain([(real, 0.5 * real)]) == 0.5
    assert response_gain([(real, np.zeros(3))]) == 0.0


def test_action_response_reads_both_worlds(tmp_path):
    bundle = tiny_dream_bundle(tmp_path / "cartpole", scene="cartpole", probe_outputs=3)
    report = tmp_path / "response.json"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "action_response.py"),
            "--scene",
            "cartpole",
            "--checkpoint",
            str(bundle),
            "--actions",
            "1",
            "-1",
            "--starts",
            "2",
            "--context",
            "2",
            "--steps",
            "3",
            "--json",
            str(report),
            "--strip",
            str(tmp_path / "strip.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "gain at step 3" in result.stdout
    data = json.loads(report.read_text())
    assert set(data["gains"]) == {"pole_angle", "cart_x"}
    assert len(data["readings"]["1.0"]["mujoco"]["pole_angle"]) == 4  # the context's last frame, then 3 steps
    import imageio.v3 as imageio

    # 2 actions x (MuJoCo, dream) rows of 4 frames, 64 pixels, 4-pixel gaps, enlarged twice
    assert imageio.imread(tmp_path / "strip.png").shape == (2 * (4 * 64 + 3 * 4), 2 * 4 * 64, 3)


def test_action_response_holds_the_push_then_lets_go():
    """--hold K: K steps of the push, then zero actions, the same in both worlds."""
    from worldenv.eval.action_response import responses

    class World:  # records the actions it is stepped with
        action_space = gymnasium.spaces.Box(-1, 1, (1,), np.float32)

        def __init__(self):
            self.actions = []

        def reset(self, seed=None, options=None):
            return np.zeros((64, 64, 3), np.uint8), {}

        def step(self, action):
            self.actions.append(float(action[0]))
            return np.zeros((64, 64, 3), np.uint8), 0.0, False, False, {}

    class Probe:
        def predict(self, frames):
            return np.zeros((*frames.shape[:-3], 3), np.float32)

    truth, dream = World(), World()
    readings, frames = responses(dream, truth, Probe(), "cartpole", 0.5, starts=1, context=2, steps=4, hold=1)
    assert dream.actions == [0.5, 0.0, 0.0, 0.0] and truth.actions == [0.0, 0.5, 0.0, 0.0, 0.0]  # one context step first
    assert frames["dream"].shape == (1, 5, 64, 64, 3) and readings["mujoco"]["pole_angle"].shape[:2] == (1, 5)


def test_episode_lengths_lists_both_worlds(tmp_path):
    bundle = tiny_dream_bundle(tmp_path / "cartpole", scene="cartpole")
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "episode_lengths.py"),
            "--scene",
            "cartpole",
            "--checkpoint",
            str(bundle),
            "--episodes",
            "2",
            "--max-steps",
            "5",
            "--model",
            "teacher",
            "--sampling-steps",
            "1",
            "--action-guidance",
            "1.5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The tiny bundle's termination head never fires: its episodes run to the cut.
    assert "dream lengths:  [5, 5]" in result.stdout and "MuJoCo lengths:" in result.stdout


def test_data_speeds_stay_inside_episodes_and_tell_white_from_correlated_actions(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from data_speeds import measure
    finally:
        sys.path.remove(str(BENCHMARKS))
    from worldenv.data.collect import CollectConfig, collect

    lag_one = {}
    for name in ("uniform", "smooth"):
        collect(
            CollectConfig(scene="reacher", episodes=2, steps_per_episode=40, shard_size=2, policy=name),
            tmp_path / name,
            progress=False,
        )
        report = measure(str(tmp_path / name), [0], threshold=0.3)
        assert report["frames"] == 82 and 0 < report["joints"][0]["p50"] <= report["joints"][0]["p99"] < 6.3
        lag_one[name] = report["action_lag1_autocorrelation"][0]
    assert lag_one["smooth"] > 0.5 > abs(lag_one["uniform"]), lag_one


def test_action_sensitivity_reads_moves_in_latents_and_task_units(tmp_path):
    from worldenv.data.collect import CollectConfig, collect

    collect(
        CollectConfig(scene="reacher", episodes=2, steps_per_episode=20, shard_size=2, policy="uniform"),
        tmp_path / "data",
        progress=False,
    )
    bundle = tiny_dream_bundle(tmp_path / "reacher", scene="reacher", probe_outputs=8)
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "action_sensitivity.py"),
            "--bundle",
            str(bundle),
            "--data",
            str(tmp_path / "data"),
            "--held-out",
            "1",
            "--windows",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    recorded = report["replacements"]["recorded"]
    # The recorded action is the one MuJoCo stepped: neither world moves.
    assert recorded["model_moved_by"] == 0.0 and recorded["mujoco_moved_by"] < 1e-10
    plus = report["replacements"]["plus_one"]
    assert plus["mujoco_moved_by"] > 0 and set(plus["probe_gain"]) == {"joint_angles", "fingertip", "target"}
    assert all(np.isfinite(g) for g in plus["probe_gain"].values())


def test_action_pathways_trains_both_regressors_and_scores_them_on_counterfactuals(tmp_path):
    from worldenv.data.collect import CollectConfig, collect

    collect(
        CollectConfig(scene="reacher", episodes=3, steps_per_episode=12, shard_size=3, policy="uniform"),
        tmp_path / "data",
        progress=False,
    )
    bundle = tiny_dream_bundle(tmp_path / "reacher", scene="reacher")
    report = tmp_path / "pathways.json"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "action_pathways.py"),
            "--bundle",
            str(bundle),
            "--data",
            str(tmp_path / "data"),
            "--held-out",
            "1",
            "--windows",
            "4",
            "--twins",
            "6",
            "--steps",
            "4",
            "--eval-every",
            "2",
            "--width",
            "32",
            "--depth",
            "1",
            "--json",
            str(report),
            "--plot",
            str(tmp_path / "pathways.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(report.read_text())["results"]
    assert set(results) == {"condition", "condition, twin loss", "condition + action_flow", "condition + action_flow, twin loss"}
    for rows in results.values():
        assert [row["step"] for row in rows] == [0, 2, 4]
        # Before training, both start from a zero action effect (adaLN-Zero, ActionFlow's zero output).
        assert rows[0]["gain"] == 0.0 and all(np.isfinite(row["held_out_mse"]) for row in rows)
    assert (tmp_path / "pathways.png").stat().st_size > 0


def test_sustained_torques_counts_small_pushes_held_for_a_window(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from sustained_torques import sustained_share
    finally:
        sys.path.remove(str(BENCHMARKS))
    held = np.zeros((12, 2), np.float32)
    held[:, 0] = 0.2  # dimension 0 pushes gently for 12 steps: all 3 of its 10-step windows count
    assert sustained_share([held], window=10, low=0.05, high=0.4) == 3 / 6
    flipped = held.copy()
    flipped[5, 0] = -0.2  # a sign change inside every window
    strong = held * 4  # |a| = 0.8: a full push, not a gentle one
    assert sustained_share([flipped, strong], window=10, low=0.05, high=0.4) == 0.0
    assert sustained_share([held[:5]], window=10, low=0.05, high=0.4) == 0.0  # shorter than a window

    from worldenv.data.collect import CollectConfig, collect

    collect(
        CollectConfig(scene="reacher", episodes=2, steps_per_episode=30, shard_size=2, policy="uniform"),
        tmp_path / "uniform",
        progress=False,
    )
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "sustained_torques.py"), "--dataset", str(tmp_path / "uniform")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(first 200 episodes): 0.0000 of 10-step windows of one sign" in result.stdout  # white noise never holds
    bad = subprocess.run([sys.executable, str(BENCHMARKS / "sustained_torques.py")], capture_output=True, text=True)
    assert bad.returncode == 2 and "expected --dataset, --policy or both" in bad.stderr


def test_eval_overlay_tables_and_plots_several_reports(tmp_path):
    def report(model_psnr: float) -> dict:
        scores = {str(h): {"psnr": model_psnr - h, "target": 0.01 * h} for h in (1, 5)}
        copy = {str(h): {"psnr": 20.0 - h, "target": 0.001} for h in (1, 5)}
        return {"scene": "reacher", "all": {"model": scores, "copy_last": copy}}

    paths = []
    for name, psnr in (("a", 30.0), ("b", 28.0)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(report(psnr)))
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "eval_overlay.py"),
            f"first={paths[0]}",
            f"second={paths[1]}",
            "--columns",
            "psnr@5",
            "target@1",
            "--plot",
            str(tmp_path / "overlay.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| first | 25.00 | 0.01 |" in result.stdout and "| second | 23.00 | 0.01 |" in result.stdout
    assert "| copy last frame | 15.00 | 0.001 |" in result.stdout
    assert (tmp_path / "overlay.png").stat().st_size > 0
    missing = subprocess.run(
        [sys.executable, str(BENCHMARKS / "eval_overlay.py"), f"first={paths[0]}", "--columns", "psnr@10"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "psnr@10: the report has horizons [1, 5]" in missing.stderr


def test_duo_strip_draws_a_seeded_closed_loop_dream(tmp_path):
    bundle = tiny_dream_bundle(tmp_path / "duo", scene="duo", probe_outputs=8)
    out = tmp_path / "strip.png"
    command = [
        sys.executable,
        str(BENCHMARKS / "duo_strip.py"),
        "--checkpoint",
        str(bundle),
        "--steps",
        "0",
        "3",
        "--scale",
        "2",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    import imageio.v3 as imageio

    first = imageio.imread(out)
    assert first.shape == (2 * 64, 2 * 2 * 64, 3)
    assert not np.array_equal(first[:, :128], first[:, 128:])  # the random agents moved
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    assert np.array_equal(imageio.imread(out), first)  # the same seed, the same dream
    bad = subprocess.run(command[:-2] + ["--steps", "-1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--steps: expected steps >= 0" in bad.stderr


def test_static_drift_reads_every_quantity_at_every_step(tmp_path):
    bundle = tiny_dream_bundle(tmp_path / "duo", scene="duo", probe_outputs=8)
    report = tmp_path / "drift.json"
    command = [
        sys.executable,
        str(BENCHMARKS / "static_drift.py"),
        "--scene",
        "duo",
        "--checkpoint",
        str(bundle),
        "--envs",
        "2",
        "--steps",
        "3",
        "--at",
        "1",
        "3",
        "--threads",
        "1",
        "--json",
        str(report),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    moved = json.loads(report.read_text())["displacement"]
    assert set(moved) == {"zero", "random", "constant"} and all(set(steps) == {"1", "3"} for steps in moved.values())
    values = [v for steps in moved.values() for step in steps.values() for v in step.values()]
    assert set(moved["zero"]["1"]) == {"agents", "targets"} and all(np.isfinite(v) and v >= 0 for v in values)
    assert "| constant | 3 |" in result.stdout
    bad = subprocess.run(command[:-2] + ["--at", "4"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "every --at in [1, --steps]" in bad.stderr


def test_add_component_copies_a_backbone_under_a_new_name_and_refuses_other_tokenizers(tmp_path):
    import shutil

    import torch

    from worldenv.checkpoint import load_bundle
    from worldenv.world_model import load_backbone

    source = tiny_dream_bundle(tmp_path / "source")
    into = tmp_path / "into"
    shutil.copytree(source, into)
    command = [
        sys.executable,
        str(BENCHMARKS / "add_component.py"),
        "--into",
        str(into),
        "--source",
        str(source),
        "--component",
        "teacher",
        "--name",
        "teacher_copy",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    bundle = load_bundle(into)
    assert bundle.config("teacher_copy") == bundle.config("teacher")
    copied, original = load_backbone(bundle, "teacher_copy").state_dict(), load_backbone(bundle, "teacher").state_dict()
    assert all(torch.equal(value, original[name]) for name, value in copied.items())

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "already has a component named 'teacher_copy'" in again.stderr
    from worldenv.checkpoint import update_bundle
    from worldenv.world_model import load_tokenizer

    other = tiny_dream_bundle(tmp_path / "other")
    retrained = load_tokenizer(load_bundle(other))
    with torch.no_grad():
        retrained.decoder[0].bias.add_(0.1)
    update_bundle(other, components={"tokenizer": (retrained, load_bundle(other).config("tokenizer"))})
    foreign = subprocess.run(command[:3] + [str(other)] + command[4:], capture_output=True, text=True, timeout=300)
    assert foreign.returncode == 2 and "different tokenizers" in foreign.stderr


def test_dream_spread_compares_noise_seeds_of_one_start(tmp_path):
    bundle = tiny_dream_bundle(tmp_path / "cartpole", scene="cartpole", probe_outputs=3)
    report = tmp_path / "spread.json"
    command = [
        sys.executable,
        str(BENCHMARKS / "dream_spread.py"),
        "--scene",
        "cartpole",
        "--checkpoint",
        str(bundle),
        "--samples",
        "3",
        "--starts",
        "2",
        "--steps",
        "3",
        "--threads",
        "1",
    ]
    result = subprocess.run([*command, "--json", str(report)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    spread = json.loads(report.read_text())["spread"]
    assert set(spread) == {"pole_angle", "cart_x"}
    assert all(len(values) == 3 and min(values) >= 0 for values in spread.values())
    assert max(spread["pole_angle"]) > 0  # different noise seeds dream different frames
    bad = subprocess.run([*command[:-8], "--samples", "1"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--samples: expected at least 2" in bad.stderr


def test_step_anatomy_splits_each_step_and_bounds_the_speedup(tmp_path):
    """Each model's parts are timed at the same batch; the network share is its evaluations
    times one evaluation, the tokenizer share counts the encode only for a frame commit,
    and the reference is 1x itself."""
    bundle = tiny_dream_bundle(tmp_path / "reacher")
    report = tmp_path / "anatomy.json"
    command = [
        sys.executable,
        str(BENCHMARKS / "step_anatomy.py"),
        "--checkpoint",
        str(bundle),
        "--models",
        "teacher@4",
        "teacher@1+frame",
        "--reference",
        "teacher@4",
        "--envs",
        "2",
        "--rounds",
        "2",
        "--calls",
        "2",
        "--threads",
        "1",
        "--json",
        str(report),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(report.read_text())
    rows = data["models"]
    assert list(rows) == ["teacher@4", "teacher@1+frame"] and data["envs"] == 2
    assert rows["teacher@4"]["evaluations"] == 5 and rows["teacher@1+frame"]["evaluations"] == 2
    for row in rows.values():
        assert all(row[part] > 0 for part in ("step", "evaluation", "decode", "encode"))
        assert np.isclose(row["networks"], row["evaluations"] * row["evaluation"])
    assert rows["teacher@4"]["tokenizer"] == rows["teacher@4"]["decode"]
    assert np.isclose(rows["teacher@1+frame"]["tokenizer"], rows["teacher@1+frame"]["decode"] + rows["teacher@1+frame"]["encode"])
    assert rows["teacher@4"]["speedup"] == 1.0
    assert "| teacher@1+frame | 1 | 2 |" in result.stdout
    bad = subprocess.run(command[:-2] + ["--envs", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "expected positive integers" in bad.stderr
