"""How fast does a dataset move, and can its actions be guessed from the past?

For each joint in ``--joints`` (qpos indices), the percentiles of its change per frame
within episodes; and the lag-1 autocorrelation of each action dimension, averaged over
episodes. A reacher's arm that turns by a large fraction of a radian per frame is
aliased in 64x64 frames at 50 Hz; actions that follow the ones before them let a world
model predict a frame without reading its action
(docs/experiments/2026-11-29-why-the-teacher-ignores-the-action.md).

    python benchmarks/data_speeds.py --data data/reacher --joints 0 1
"""

import argparse
import json

import numpy as np

from worldenv.data.dataset import FrameDataset, load_dataset

PERCENTILES = (50, 90, 99)


def joint_turns(data: FrameDataset, joint: int) -> np.ndarray:
    """|qpos[joint] change| over every step inside an episode."""
    qpos = data.states["qpos"][:, joint]
    inside = np.ones(data.num_frames - 1, bool)
    inside[data.episode_starts[1:] - 1] = False  # the step from one episode's last frame to the next's first
    return np.abs(np.diff(qpos))[inside]


def action_autocorrelation(data: FrameDataset) -> list[float]:
    """Lag-1 autocorrelation of each action dimension, averaged over episodes (frame 0 of
    an episode has no action and is left out)."""
    per_episode = []
    for start, length in zip(data.episode_starts, data.episode_lengths):
        actions = data.actions[start + 1 : start + length]
        if len(actions) > 2:
            with np.errstate(invalid="ignore", divide="ignore"):
                per_episode.append([np.corrcoef(a[:-1], a[1:])[0, 1] for a in actions.T])
    return np.nanmean(np.array(per_episode), axis=0).tolist()


def measure(path: str, joints: list[int], threshold: float) -> dict:
    data = load_dataset(path)
    report = {"data": path, "frames": int(data.num_frames), "joints": {}}
    for joint in joints:
        turns = joint_turns(data, joint)
        report["joints"][joint] = {f"p{p}": float(np.percentile(turns, p)) for p in PERCENTILES}
        report["joints"][joint][f"share_over_{threshold}"] = float((turns > threshold).mean())
    report["action_lag1_autocorrelation"] = action_autocorrelation(data)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--joints", type=int, nargs="+", default=[0], help="qpos indices (default: 0)")
    parser.add_argument("--threshold", type=float, default=0.3, help="report the share of frames turning more (rad)")
    args = parser.parse_args()
    print(json.dumps(measure(args.data, args.joints, args.threshold), indent=2))


if __name__ == "__main__":
    main()
