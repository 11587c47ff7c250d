"""``worldenv bench worlds``: every world of a bundle beside MuJoCo, speed and fidelity in
one table, JSON and PNG (``worldenv/eval/bench.py``). Timings are not asserted."""

import json

from worldenv.checkpoint import shipped_checkpoint
from worldenv.cli import main
from worldenv.eval.bench import bundle_worlds
from worldenv.serving import Serving


def test_the_worlds_of_the_shipped_reacher_are_the_served_dream_the_best_teacher_and_each_student():
    assert bundle_worlds(shipped_checkpoint("reacher")) == [
        Serving("student_consistency", 1, commit="frame"),
        Serving("teacher", 16),
        Serving("student_consistency", 1),
    ]


def test_a_quick_bench_writes_one_table_json_and_png(tmp_path, capsys):
    from dream_bundles import tiny_dream_bundle

    bundle = tiny_dream_bundle(tmp_path / "reacher", probe_outputs=8)  # the reacher probe's 8 readings
    report, plot = tmp_path / "worlds.json", tmp_path / "worlds.png"
    assert (
        main(
            [
                "bench",
                "worlds",
                "--checkpoint",
                str(bundle),
                "--quick",
                "--steps",
                "50",
                "--dtype",
                "float32",
                "--observation",
                "pixels",
                "latent",
                "--json",
                str(report),
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    written = json.loads(report.read_text())
    rows = {(row["serving"], row["envs"], row["observation"]) for row in written["dreams"]}
    assert rows == {
        (world, envs, observation)
        for world in ("teacher@4", "teacher@16")
        for envs in (1, 16)
        for observation in ("pixels", "latent")
    }
    assert set(written["fidelity"]) == {"teacher@4", "teacher@16"}
    assert {"psnr_h1", "psnr_h10", "action_gain"} <= set(written["fidelity"]["teacher@16"])
    assert written["command"].startswith("worldenv bench worlds")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "| teacher@4 (served) | float32 | 1 | 5 |" in table and "PSNR h10 (dB)" in table
