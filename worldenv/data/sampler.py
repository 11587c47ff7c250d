"""Random fixed-length windows of consecutive frames for training.

All valid window starts are enumerated once; a batch is then one random draw
and one fancy-index gather per array, with no Python loop over the batch.
"""

from dataclasses import dataclass

import numpy as np

from worldenv.data.dataset import FrameDataset


@dataclass
class Window:
    frames: np.ndarray  # (B, L, H, W, 3) uint8
    actions: np.ndarray  # (B, L, A) float32, the action that led to each frame
    rewards: np.ndarray  # (B, L) float32, or (B, L, K) with one per agent
    terminated: np.ndarray  # (B, L) bool
    first: np.ndarray  # (B, L) bool, frame is an episode's reset frame (no action led to it)
    states: dict[str, np.ndarray]  # key -> (B, L, d)
    start: np.ndarray  # (B,) global index of each window's first frame


class WindowSampler:
    def __init__(self, dataset: FrameDataset, length: int, seed: int = 0):
        if length < 1:
            raise ValueError(f"window length must be >= 1, got {length}")
        lengths = dataset.episode_lengths
        if lengths.max() < length:
            raise ValueError(f"window length {length} exceeds the longest episode ({lengths.max()} frames)")
        self.dataset, self.length = dataset, length
        # Windows stay inside one episode: starts 0 .. len-L of every long-enough episode.
        self.starts = np.concatenate(
            [start + np.arange(n - length + 1) for start, n in zip(dataset.episode_starts, lengths) if n >= length]
        )
        self.first = np.zeros(dataset.num_frames, bool)
        self.first[dataset.episode_starts] = True
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.starts)

    def sample(self, batch: int, rng: np.random.Generator | None = None) -> Window:
        """``batch`` windows drawn with ``rng`` (the sampler's own generator if None)."""
        start = self.starts[(rng or self.rng).integers(len(self.starts), size=batch)]
        index = start[:, None] + np.arange(self.length)  # (B, L) frame indices
        data = self.dataset
        return Window(
            frames=data.frames[index],
            actions=data.actions[index],
            rewards=data.rewards[index],
            terminated=data.terminated[index],
            first=self.first[index],
            states={key: value[index] for key, value in data.states.items()},
            start=start,
        )
