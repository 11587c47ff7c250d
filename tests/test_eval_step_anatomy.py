"""``worldenv.eval.step_anatomy``: a dream step split into its parts, each model at the same
batch (``benchmarks/step_anatomy.py`` is its command line)."""

import numpy as np
import torch
from dream_bundles import tiny_dream_bundle

from worldenv.eval.step_anatomy import anatomy_report, anatomy_table
from worldenv.serving import Serving


def test_the_parts_add_up_to_the_step_and_the_reference_is_one_x(tmp_path):
    torch.set_num_threads(1)
    bundle = tiny_dream_bundle(tmp_path / "reacher")
    teacher, student = Serving.parse("teacher@2"), Serving.parse("teacher@1+frame")
    report = anatomy_report(bundle, [student], teacher, envs=2, dtype="float32", rounds=1, calls=1)
    assert list(report["models"]) == ["teacher@1+frame"] and report["reference"] == "teacher@2"  # timed, not reported
    row = report["models"]["teacher@1+frame"]
    assert row["evaluations"] == 2 and np.isclose(row["tokenizer"], row["decode"] + row["encode"])
    assert np.isclose(row["networks"] + row["tokenizer"] + row["rest"], row["step"])
    assert row["speedup"] > 0 and row["speedup_bound"] > 0
    table = anatomy_table(report).splitlines()
    assert len(table) == 3 and table[2].startswith("| teacher@1+frame | 1 | 2 |")
