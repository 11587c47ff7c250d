"""What ``worldenv inspect`` reports: counts and returns of a dataset, and every
problem found while verifying its files."""

from pathlib import Path

import numpy as np

from worldenv.data.format import DatasetError, Manifest, verify


def summarize(directory: Path) -> tuple[str, list[str]]:
    """A human-readable report and the list of problems (empty if the dataset is sound)."""
    directory = Path(directory)
    problems = verify(directory)
    try:
        manifest = Manifest.load(directory)
    except DatasetError:
        return f"dataset  {directory}: unreadable", problems
    bad = {Path(p.split(":")[0]).name for p in problems}
    # Counts are of what verified: a missing or damaged shard's episodes are not in the dataset.
    sound = [shard for shard in manifest.shards if shard.file not in bad]
    episodes, total_steps = sum(s.episodes for s in sound), sum(s.steps for s in sound)
    lengths: list[np.ndarray] = []  # per shard: each episode's steps
    returns: list[np.ndarray] = []  # per shard: each episode's (team) return
    terminated = 0
    for shard in sound:
        # Only the small per-step arrays are decompressed, not the frames.
        with np.load(directory / shard.file, allow_pickle=False) as npz:
            steps, rewards = npz["episode_steps"], npz["rewards"]
            # An episode's last step is terminal if it ended by termination (with
            # frames_after_termination, the steps before it are terminal too).
            terminated += int(npz["terminated"][np.cumsum(steps) - 1].sum())
        lengths.append(steps)
        rewards = rewards.reshape(len(rewards), -1).sum(1)  # per-agent rewards: the team return
        returns.append(np.add.reduceat(rewards, np.concatenate([[0], np.cumsum(steps)[:-1]])))
    size = sum(s.bytes for s in manifest.shards) / 2**20
    height, width, channels = manifest.observation_shape
    lines = [
        f"dataset   {directory}",
        f"scene     {manifest.scene}  frames {height}x{width}x{channels}  action dim {manifest.action_dim}",
        "versions  " + "  ".join(f"{k} {v}" for k, v in sorted(manifest.versions.items())),
        "collected " + "  ".join(f"{k}={v}" for k, v in sorted(manifest.collection.items())),
        f"episodes  {episodes} ({'complete' if manifest.complete and not problems else 'INCOMPLETE'}"
        f"{'' if episodes == manifest.episodes else f', {manifest.episodes} recorded, {episodes} verified'})"
        f"  steps {total_steps}  frames {total_steps + episodes}",
    ]
    if lengths:
        length, ret = np.concatenate(lengths), np.concatenate(returns)
        lines += [
            f"length    min {length.min()}  mean {length.mean():.1f}  max {length.max()}"
            f"  (episodes ended by termination: {terminated})",
            f"return    mean {ret.mean():.3f}  std {ret.std():.3f}  min {ret.min():.3f}  max {ret.max():.3f}",
        ]
    verdict = "all checksums verified" if not problems else f"{len(problems)} problem(s)"
    shards = f"{len(sound)} of {len(manifest.shards)} verified" if len(sound) != len(manifest.shards) else len(sound)
    lines.append(f"shards    {shards}  {size:.1f} MiB  {verdict}")
    return "\n".join(lines), problems
