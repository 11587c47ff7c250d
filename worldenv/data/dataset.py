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


def concatenate(datasets: list[FrameDataset]) -> FrameDataset:
    """Datasets of one scene as one, back to back; the first's manifest stands for all."""
    first = datasets[0]
    for other in datasets[1:]:
        if (other.manifest.scene, other.frames.shape[1:], other.actions.shape[1:]) != (
            first.manifest.scene,
            first.frames.shape[1:],
            first.actions.shape[1:],
        ):
            raise DatasetError(
                f"cannot train on datasets of different scenes or shapes together: "
                f"{first.manifest.scene} {first.frames.shape[1:]} frames with {first.actions.shape[1]} actions, "
                f"{other.manifest.scene} {other.frames.shape[1:]} frames with {other.actions.shape[1]} actions"
            )
    offsets = np.cumsum([0] + [d.num_frames for d in datasets[:-1]])
    return FrameDataset(
        manifest=first.manifest,
        frames=np.concatenate([d.frames for d in datasets]),
        actions=np.concatenate([d.actions for d in datasets]),
        rewards=np.concatenate([d.rewards for d in datasets]),
        terminated=np.concatenate([d.terminated for d in datasets]),
        states={k: np.concatenate([d.states[k] for d in datasets]) for k in first.states},
        episode_starts=np.concatenate([d.episode_starts + offset for d, offset in zip(datasets, offsets)]),
        episode_lengths=np.concatenate([d.episode_lengths for d in datasets]),
        episode_index=np.concatenate([d.episode_index for d in datasets]),
    )


def _aligned_to_frames(per_step: list[np.ndarray]) -> np.ndarray:
    """One zero in front of each episode's steps: the reset frame has no action,
    reward or termination leading to it."""
    return np.concatenate([np.concatenate([np.zeros_like(steps[:1]), steps]) for steps in per_step])
