"""The shipped dreams dream what they dreamt when their reference rollouts were recorded
(``scripts/record_golden_rollouts.py``): a refactor that changes no behaviour keeps them.

On a CPU with the same kernels (torch's CPU capability) and the same torch, frames,
rewards and terminations are bit-identical. Elsewhere the kernels round differently in
the last bits, so frames may differ by a level here and there; the check is then that
the rollout is the same within that noise (a behaviour change moves whole objects)."""

import numpy as np
import pytest
import torch
from golden_rollouts import GOLDEN, SCENES, roll_out


@pytest.mark.parametrize("scene", SCENES)
def test_shipped_dream_matches_recorded_rollout(scene):
    golden = np.load(GOLDEN / f"{scene}.npz")
    now = roll_out(scene)
    same_kernels = str(golden["cpu"]) == torch.backends.cpu.get_cpu_capability() and str(golden["torch"]) == torch.__version__
    if same_kernels:
        np.testing.assert_array_equal(now["frames"], golden["frames"])
        np.testing.assert_array_equal(now["rewards"], golden["rewards"])
    else:
        difference = np.abs(now["frames"].astype(np.int16) - golden["frames"].astype(np.int16))
        assert difference.mean() < 1.0, f"{scene}: mean frame difference {difference.mean():.2f} levels"
        np.testing.assert_allclose(now["rewards"], golden["rewards"], atol=0.02)
    np.testing.assert_array_equal(now["terminations"], golden["terminations"])
