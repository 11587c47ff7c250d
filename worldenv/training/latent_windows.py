"""Windows of tokenizer latents for training the backbone (teacher and students).

Frames are encoded once by the bundle's tokenizer and kept in memory (moved to
the model's device on first use); the latents are cached beside the data
(``<data>/.latents/``, or in the run directory where the data is read-only), named by
the tokenizer's weights and the training data, so a resumed run, a repeated one and
every fine-tune or recipe variant on the same data and tokenizer encode only once. Every
random draw uses the step's CPU generator, so a batch is the same on any device and after
a resume.
"""

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from worldenv.checkpoint import Bundle
from worldenv.config import ConfigError
from worldenv.data.dataset import FrameDataset
from worldenv.data.sampler import WindowSampler
from worldenv.nn.backbone import BackboneConfig, Segments
from worldenv.nn.tokenizer import Tokenizer
from worldenv.state_io import load_tree, save_tree
from worldenv.training.data import DataConfig, draw_windows
from worldenv.training.loop import Distributed
from worldenv.training.memory_schedule import memory_schedule
from worldenv.world_model import load_tokenizer

logger = logging.getLogger(__name__)

MEMORY_DROPOUT = 0.25  # share of training sequences without sinks, and (drawn apart) without memory


@dataclass
class LatentBatch:
    x0: torch.Tensor  # (B, L, N, C) clean latents, float32
    actions: torch.Tensor  # (B, L, A), each the action that led to its frame
    rewards: torch.Tensor  # (B, L, K)
    terminated: torch.Tensor  # (B, L) float
    has_step: torch.Tensor  # (B, L) float: 0 for an episode's first frame (no action, reward or termination)
    # With long-term memory: the first ``context`` frames are the episode's sinks and the
    # memory's frames (context only, clean), then the window; ``segments`` says which are present.
    context: int = 0
    segments: Segments | None = None
    # With action_history k > 1: the k - 1 actions before the window, oldest first (zeros
    # before the episode's first frame), so its first frames are conditioned as in a dream.
    past_actions: torch.Tensor | None = None


@torch.no_grad()
def encode_frames(tokenizer: Tokenizer, frames: np.ndarray, batch: int = 256, device: str | torch.device = "cpu") -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, h*w, C) float16 latents (on the CPU), encoded on ``device``."""
    tokenizer = tokenizer.to(device)
    out = []
    for start in range(0, len(frames), batch):
        z = tokenizer.encode(torch.from_numpy(frames[start : start + batch]).to(device))
        out.append(z.flatten(1, 2).half().cpu())
    tokenizer.cpu()
    return torch.cat(out)


class LatentWindows:
    def __init__(self, data: DataConfig, bundle: Bundle, run: Path, model: BackboneConfig, device: str, where: str):
        dataset = data.load_training()
        self.tokenizer = load_tokenizer(bundle)
        tok = self.tokenizer.config
        rewards = 1 if dataset.rewards.ndim == 1 else dataset.rewards.shape[1]
        expected = {
            "latent_channels": tok.latent_channels,
            "grid": tok.grid,
            "action_dim": dataset.actions.shape[1],
            "rewards": rewards,
        }
        for key, value in expected.items():
            if getattr(model, key) != value:
                raise ConfigError(f"{where}.{key}: {getattr(model, key)} does not match the tokenizer/dataset ({value})")
        self.scene = dataset.manifest.scene
        self.model = model
        self.sampler = WindowSampler(dataset, length=model.context_frames)
        self.data_path = data.path
        self.latents = self._encode(dataset, data.fingerprint(), Path(run), device)
        if model.memory_frames:
            self.episode_start = np.repeat(dataset.episode_starts, dataset.episode_lengths)  # of each frame's episode
            logger.info("replaying the memory rule over %d episodes", dataset.num_episodes)
            self.memory = memory_schedule(
                self.latents, dataset.episode_starts, dataset.episode_lengths, model.sink_frames, model.memory_frames
            )

    @property
    def length(self) -> int:
        return self.sampler.length

    def _encode(self, dataset: FrameDataset, data_key: str, run: Path, device: str) -> torch.Tensor:
        key = _fingerprint(self.tokenizer)
        path = latent_cache_path(Path(self.data_path), key, data_key, run)
        if path.exists():
            cached = load_tree(path)
            if cached["tokenizer"] == key and cached.get("data") == data_key and cached["frames"] == dataset.num_frames:
                return cached["latents"]
        logger.info("encoding %d frames with the tokenizer (cached in %s)", dataset.num_frames, path)
        target = Distributed.from_environment().device(device)
        latents = encode_frames(self.tokenizer, dataset.frames, batch=256 if target.type == "cpu" else 4096, device=target)
        save_tree(path, {"tokenizer": key, "data": data_key, "frames": dataset.num_frames, "latents": latents})
        return latents

    def draw(self, batch: int, generator: torch.Generator, device: torch.device) -> tuple[LatentBatch, torch.Tensor]:
        """A batch of windows on ``device``, and their (B, L) frame indices (CPU)."""
        if self.latents.device != device:
            self.latents = self.latents.to(device)  # once: the whole cache lives beside the model
        window = draw_windows(self.sampler, batch, generator)
        if self.model.memory_frames:
            return self._with_memory(window.start, generator, device)
        index = torch.from_numpy(window.start)[:, None] + torch.arange(self.length)  # (B, L)
        rewards = torch.from_numpy(window.rewards)
        batch_ = LatentBatch(
            x0=self.latents[index.to(device)].float(),
            actions=torch.from_numpy(window.actions).to(device),
            rewards=rewards.reshape(*index.shape, -1).to(device),
            terminated=torch.from_numpy(window.terminated).float().to(device),
            has_step=torch.from_numpy(~window.first).float().to(device),
            past_actions=self._past_actions(window.start, device),
        )
        return batch_, index

    def _past_actions(self, start: np.ndarray, device: torch.device) -> torch.Tensor | None:
        past = self.model.action_history - 1
        if not past:
            return None
        data = self.sampler.dataset
        return torch.from_numpy(actions_before(data.actions, data.episode_starts, start, past)).to(device)

    def _with_memory(self, start: np.ndarray, generator: torch.Generator, device: torch.device):
        """Sequences laid out as the cache holds them: the episode's sink frames, the
        memory before the window (``memory_schedule``), then the window. Sinks (and,
        separately, the memory) are left out of a ``dropout`` share of sequences, so the
        backbone also works with less context (a fresh dream; the ablations)."""
        m = self.model
        episode_start = self.episode_start[start]
        sinks = episode_start[:, None] + np.arange(m.sink_frames)  # (B, S)
        window = start[:, None] + np.arange(self.length)  # (B, W + 1)
        index = np.concatenate([sinks, self.memory[start], window], axis=1)  # (B, S + M + W + 1)
        valid = np.concatenate([sinks < start[:, None], self.memory[start] >= 0, np.ones_like(window, bool)], axis=1)
        B = len(start)
        keep_sinks, keep_memory = (torch.rand(2, B, generator=generator) >= MEMORY_DROPOUT).numpy()
        valid[:, : m.sink_frames] &= keep_sinks[:, None]
        valid[:, m.sink_frames : m.sink_frames + m.memory_frames] &= keep_memory[:, None]
        index = np.where(valid, index, start[:, None])  # a missing frame points anywhere harmless
        first = index == self.episode_start[index]
        data = self.sampler.dataset
        gather = torch.from_numpy(index).to(device)
        latents = self.latents[gather].float()
        previous = torch.where(
            torch.from_numpy(first)[..., None, None].to(device), 0.0, self.latents[(gather - 1).clamp_min(0)].float()
        )
        starts = torch.ones(index.shape, dtype=torch.bool)
        starts[:, -self.length + 1 :] = False  # the window's frames follow one another
        batch_ = LatentBatch(
            x0=latents,
            actions=torch.from_numpy(data.actions[index]).to(device),
            rewards=torch.from_numpy(data.rewards[index]).reshape(*index.shape, -1).to(device),
            terminated=torch.from_numpy(data.terminated[index]).float().to(device),
            has_step=torch.from_numpy(~first & valid).float().to(device),
            context=m.sink_frames + m.memory_frames,
            segments=Segments(torch.from_numpy(valid).to(device), starts.to(device), previous),
        )
        return batch_, torch.from_numpy(index)


def latent_cache_path(data: Path, tokenizer_key: str, data_key: str, run: Path) -> Path:
    """Where the latents of ``data`` (with its extra datasets and split: ``data_key``) under
    tokenizer ``tokenizer_key`` are kept: beside the data, else in the run directory."""
    shared = data / ".latents"
    try:
        shared.mkdir(exist_ok=True)
    except OSError:
        return run / "latents.safetensors"
    if not os.access(shared, os.W_OK):
        return run / "latents.safetensors"
    return shared / f"{tokenizer_key}-{data_key}.safetensors"


def actions_before(actions: np.ndarray, episode_starts: np.ndarray, start: np.ndarray, count: int) -> np.ndarray:
    """(B, count, A) float32: the ``count`` actions before each frame index ``start`` (B,),
    oldest first, zeros for frames before that frame's episode."""
    episode_start = episode_starts[np.searchsorted(episode_starts, start, side="right") - 1]
    index = start[:, None] + np.arange(-count, 0)  # (B, count)
    inside = (index >= episode_start[:, None])[..., None]
    return (actions[np.maximum(index, 0)] * inside).astype(np.float32)


def _fingerprint(module: torch.nn.Module) -> str:
    """A short digest of a module's weights: the latent cache is valid for these only."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def head_losses(out, batch: LatentBatch, termination_pos_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward MSE and termination BCE of a backbone's heads (float32), over frames that
    follow a step: a reset frame has no reward or termination of its own.
    ``termination_pos_weight`` weighs terminal frames: where they are rare (a cartpole
    falls once per episode, 0.5 % of frames) an unweighted head learns never to fire."""
    steps = batch.has_step.sum().clamp_min(1)
    reward = ((out.reward.float() - batch.rewards).square().mean(-1) * batch.has_step).sum() / steps
    pos_weight = torch.tensor(termination_pos_weight, device=batch.terminated.device)
    termination = F.binary_cross_entropy_with_logits(
        out.termination_logit.float(), batch.terminated, reduction="none", pos_weight=pos_weight
    )
    return reward, (termination * batch.has_step).sum() / steps
