"""Record the shipped dreams' reference rollouts that ``tests/test_golden_rollouts.py``
checks: a refactor that leaves behaviour unchanged leaves these frames bit-identical.

    python scripts/record_golden_rollouts.py        # rewrite tests/golden/*.npz

Rerun it only when a change is meant to change what the shipped dreams dream (new
weights, a new serving choice), and say so in the commit.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np  # noqa: E402
from golden_rollouts import GOLDEN, SCENES, roll_out  # noqa: E402


def main() -> int:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for scene in SCENES:
        np.savez_compressed(GOLDEN / f"{scene}.npz", **roll_out(scene))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
