"""The memory suite (panorama revisits) and the long-rollout benchmark, on tiny bundles."""

import json

import numpy as np
import pytest

from worldenv.dream_config import DreamConfig
from worldenv.eval.long_rollout import LongRolloutConfig, long_rollout, long_rollout_table
from worldenv.eval.revisit import RevisitConfig, real_revisits, revisit_actions, revisit_suite, revisit_table


def test_revisit_actions_turn_out_hold_and_undo_exactly():
    actions = revisit_actions(away=40, direction=-1.0, settle=3)
    assert actions.shape == (43, 2)
    assert (actions[:15, 0] == -1).all() and (actions[15:25] == 0).all() and (actions[25:40, 0] == 1).all()
    assert actions[:, 0].sum() == 0 and (actions[40:] == 0).all()
    short = revisit_actions(away=8, direction=1.0, settle=1)
    assert short[:4, 0].tolist() == [1] * 4 and short[4:8, 0].tolist() == [-1] * 4


def test_the_ground_truth_returns_to_the_view_it_left():
    """What the suite rests on: after turning away and back, MuJoCo shows the very same frame."""
    config = RevisitConfig(episodes=2, context=4, settle=2)
    real = real_revisits(config, away=10)
    left, back = real["frames"][:, config.context - 1], real["frames"][:, config.context + 10 :]
    assert real["frames"].shape == (2, 4 + 10 + 2, 64, 64, 3)
    assert all(np.array_equal(left, back[:, i]) for i in range(2))
    assert not np.array_equal(left, real["frames"][:, config.context + 5])  # away, it saw something else


def test_revisit_suite_compares_three_caches_and_records_them_in_the_card(panorama_dream, tmp_path):
    import shutil

    from worldenv.checkpoint import load_bundle
    from worldenv.cli import main

    bundle = tmp_path / "bundle"
    shutil.copytree(panorama_dream, bundle)
    out, plot = tmp_path / "memory.json", tmp_path / "memory.png"
    assert (
        main(
            [
                "eval",
                "--suite",
                "memory",
                "--checkpoint",
                str(bundle),
                "--away",
                "2",
                "6",
                "--episodes",
                "2",
                "--steps",
                "1",
                "--dtype",
                "bfloat16",
                "--json",
                str(out),
                "--plot",
                str(plot),
                "--update-card",
            ]
        )
        == 0
    )
    assert "## Long-term memory: revisits" in (bundle / "card.md").read_text()
    assert load_bundle(bundle).metadata["memory_evaluation"]["command"].startswith("worldenv eval --suite memory")
    report = json.loads(out.read_text())
    assert report["dtype"] == "bfloat16"
    caches = report["caches"]
    assert caches["window"]["slots"] == {"sink_frames": 0, "memory_frames": 0, "window_frames": 2}
    assert caches["window + sinks"]["slots"] == {"sink_frames": 1, "memory_frames": 0, "window_frames": 2}
    assert caches["window + sinks + memory"]["slots"] == {"sink_frames": 1, "memory_frames": 2, "window_frames": 2}
    for scores in caches.values():
        assert all(np.isfinite(scores[t]["psnr"]) and scores[t]["objects_in_view"] >= 0 for t in ("2", "6"))
    assert plot.stat().st_size > 5000
    assert "| 6 |" in revisit_table(report)


def test_revisit_suite_needs_a_panorama_bundle(reacher_dream):
    with pytest.raises(ValueError, match="panorama"):
        revisit_suite(reacher_dream, RevisitConfig(away=(4,), episodes=1))
    with pytest.raises(ValueError, match="away"):
        RevisitConfig(away=(1,)).validate()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_long_rollout_reports_cost_memory_and_frame_range(panorama_dream, dtype):
    config = LongRolloutConfig(steps=60, marks=(25, 60), dream=DreamConfig(model="teacher", sampling_steps=1, dtype=dtype))
    report = long_rollout(panorama_dream, config)
    assert report["finite"] and set(report["marks"]) == {"25", "60"} and report["dtype"] == dtype
    for row in report["marks"].values():
        assert row["ms_per_step"] > 0 and row["resident_mb"] > 0 and isinstance(row["in_real_range"], bool)
    low, high = report["real_frame_mean"]
    assert 0 <= low <= high <= 255
    assert f"| panorama | teacher@1 | {dtype} | 60 |" in long_rollout_table([report])
    with pytest.raises(ValueError, match="marks"):
        LongRolloutConfig(steps=100, marks=(10, 100)).validate()


def test_bench_long_dreams_each_bundle_with_what_it_serves(panorama_dream, tmp_path, capsys):
    """`worldenv bench long` takes each bundle's serving choice, action guidance included."""
    import shutil

    from worldenv.checkpoint import update_bundle
    from worldenv.cli import main as cli_main

    bundle = shutil.copytree(panorama_dream, tmp_path / "served")
    update_bundle(
        bundle,
        metadata={
            "serving": {"model": "teacher", "sampling_steps": 1, "action_guidance": 1.5, "command": "test", "comparison": ""}
        },
    )
    assert cli_main(["bench", "long", "--steps", "60", "--bundles", str(bundle), "--json", str(tmp_path / "long.json")]) == 0
    report = json.loads((tmp_path / "long.json").read_text())["reports"][0]
    assert report["config"]["action_guidance"] == 1.5 and set(report["marks"]) == {"50", "60"}
    assert "| panorama | teacher@1g1.5 | float32 | 60 |" in capsys.readouterr().out


def test_the_panorama_probe_reads_what_the_camera_sees():
    from worldenv.eval.probe import objects_in_view

    task = np.zeros(22)
    task[:4] = [0.5, 0.0, 0.0, 1.0]  # at (0.5, 0), looking along +y
    task[4:6] = [0.5, 2.0]  # object 0: 2 m straight ahead
    task[6:8] = [0.0, 1.0]  # object 1: 1 m ahead, 0.5 m to the left (27 degrees: in view)
    task[8:10] = [0.5, -2.0]  # object 2: behind
    task[10:12] = [2.5, 0.0]  # object 3: 90 degrees to the right
    view = objects_in_view(task).reshape(8, 2)
    np.testing.assert_allclose(view[0], [2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(view[1], [1.0, 0.5], atol=1e-12)
    assert (view[2:] == 0).all()
