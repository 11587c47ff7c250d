"""Training-side data: a dataset split into training and held-out episodes, and
batches drawn with a step's torch generator (so a resumed run draws the same)."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from worldenv.data.dataset import FrameDataset, concatenate, load_dataset
from worldenv.data.format import MANIFEST, Manifest
from worldenv.data.sampler import WindowSampler
from worldenv.io import sha256_file


@dataclass
class DataConfig:
    path: str  # dataset directory made by `worldenv collect`
    held_out_episodes: int = 50  # the last episodes, never trained on (evaluation uses them)
    # More datasets of the scene, trained on in full beside ``path``'s training episodes:
    # data collected for what ``path`` lacks (a cartpole's end stops: ``--policy roam``).
    # The held-out episodes are ``path``'s alone, so evaluations stay comparable.
    extra_paths: list[str] = field(default_factory=list)

    def split(self) -> tuple[slice, slice]:
        total = Manifest.load(Path(self.path)).episodes
        if not 0 <= self.held_out_episodes < total:
            from worldenv.config import ConfigError

            raise ConfigError(
                f"held_out_episodes: expected 0 <= value < {total} (the dataset's episodes), got {self.held_out_episodes}"
            )
        return slice(0, total - self.held_out_episodes), slice(total - self.held_out_episodes, total)

    def fingerprint(self) -> str:
        """A short digest of which episodes train: every dataset's manifest and the split. A
        cache of the training frames' latents is valid for these only (a swapped extra
        dataset may well have as many frames as the one it replaced)."""
        digest = hashlib.sha256(str(self.held_out_episodes).encode())
        for directory in (self.path, *self.extra_paths):
            digest.update(sha256_file(Path(directory) / MANIFEST).encode())
        return digest.hexdigest()[:16]

    def load_training(self) -> FrameDataset:
        own = load_dataset(Path(self.path), episodes=self.split()[0])
        return concatenate([own, *(load_dataset(Path(extra)) for extra in self.extra_paths)]) if self.extra_paths else own

    def load_held_out(self) -> FrameDataset:
        return load_dataset(Path(self.path), episodes=self.split()[1])


def draw_windows(sampler: WindowSampler, batch: int, generator: torch.Generator):
    """A batch of windows whose choice depends only on ``generator``."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return sampler.sample(batch, np.random.default_rng(seed))
