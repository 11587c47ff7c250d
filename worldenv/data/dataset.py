"""A verified dataset in memory, laid out for training.

``load_dataset`` checks the manifest and every shard's sha256 before it reads a
byte of data, and refuses a dataset with any bad file by naming it; then it
concatenates all episodes into flat per-frame arrays. Step quantities are
aligned to the frame they lead to: ``actions[f]`` is the action that produced
frame ``f`` (zeros for an episode's first frame), likewise ``rewards`` and
``terminated``. A model that predicts frame ``f`` from frames ``< f`` and
actions ``<= f`` then indexes everything with the same ``f``.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worldenv.data.format import STATE_KEYS, DatasetError, Manifest, read_shard, verify


@dataclass
class FrameDataset:
    manifest: Manifest
    frames: np.ndarray  # (F, H, W, 3) uint8, episodes back to back
    actions: np.ndarray  # (F, A) float32, the action that led to each frame
    rewards: np.ndarray  # (F,) float32, the reward received with each frame; (F, K) with one per agent
    terminated: np.ndarray  # (F,) bool
    states: dict[str, np.ndarray]  # key -> (F, d)
    episode_starts: np.ndarray  # (E,) index of each episode's first frame
    episode_lengths: np.ndarray  # (E,) frames per episode (steps + 1)
    episode_index: np.ndarray  # (E,) global episode numbers

    @property
    def num_episodes(self) -> int:
        return len(self.episode_starts)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def episode_frames(self, episode: int) -> slice:
        start = int(self.episode_starts[episode])
        return slice(start, start + int(self.episode_lengths[episode]))


def load_dataset(directory: Path, episodes: slice | None = None) -> FrameDataset:
    """Load (a slice of the episodes of) a dataset, after verifying all of it."""
    directory = Path(directory)
    problems = verify(directory)
    if problems:
        raise DatasetError("refusing to load a damaged dataset:\n  " + "\n  ".join(problems))
    manifest = Manifest.load(directory)
    wanted = range(manifest.episodes)[episodes or slice(None)]
    if not wanted:
        raise DatasetError(f"{directory}: episode selection {episodes} is empty (dataset has {manifest.episodes})")
    parts = []
    for shard in manifest.shards:
        if shard.first_episode + shard.episodes <= wanted.start or shard.first_episode >= wanted.stop:
            continue
        parts += [e for e in read_shard(directory / shard.file) if e.index in wanted]
    lengths = np.array([e.steps + 1 for e in parts], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    return FrameDataset(
        manifest=manifest,
        frames=np.concatenate([e.frames for e in parts]),
        actions=_aligned_to_frames([e.actions for e in parts]),
        rewards=_aligned_to_frames([e.rewards for e in parts]),
        terminated=_aligned_to_frames([e.terminated for e in parts]),
        states={k: np.concatenate([e.states[k] for e in parts]).astype(np.float32) for k in STATE_KEYS},
        episode_starts=starts,
        episode_lengths=lengths,
        episode_index=np.array([e.index for e in parts], np.int64),
    )


def _aligned_to_frames(per_step: list[np.ndarray]) -> np.ndarray:
    """One zero in front of each episode's steps: the reset frame has no action,
    reward or termination leading to it."""
    return np.concatenate([np.concatenate([np.zeros_like(steps[:1]), steps]) for steps in per_step])
