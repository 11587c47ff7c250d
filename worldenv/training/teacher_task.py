"""Training the teacher: the block-causal backbone on windows of tokenizer
latents, with flow matching where every frame of a window has its own noise
level (diffusion forcing, Chen et al. 2024), plus reward and termination heads.

Frames are encoded once by the bundle's tokenizer and kept in memory; the
latents are cached in the run directory, keyed by the tokenizer's weights.
"""

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from worldenv.checkpoint import load_bundle, update_bundle
from worldenv.config import ConfigError
from worldenv.data.sampler import WindowSampler
from worldenv.diffusion.flow import add_noise, flow_matching_loss, sample_training_times
from worldenv.nn.backbone import Backbone, BackboneConfig
from worldenv.nn.tokenizer import Tokenizer
from worldenv.state_io import load_tree, save_tree
from worldenv.training.data import DataConfig, draw_windows
from worldenv.training.loop import Distributed, TrainConfig
from worldenv.world_model import load_tokenizer

logger = logging.getLogger(__name__)


@dataclass
class TeacherTrainingConfig:
    data: DataConfig
    bundle: str  # holds the trained tokenizer; the teacher is written into it
    run: str
    model: BackboneConfig = field(default_factory=BackboneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Share of frames drawn at a context noise level in [0, context_noise] instead of the
    # logit-normal: at inference the context is clean (or lightly noised), so the model
    # must see many windows whose past is (nearly) clean.
    clean_context_share: float = 0.5
    context_noise: float = 0.05
    # Noise levels of the other frames. Uniform, not SD3's logit-normal: a few-step
    # sampler starts at t = 1, where the velocity is the model's whole prediction of
    # the next frame (the dynamics are nearly deterministic); logit-normal almost never
    # trains there (t > 0.95 has probability 0.2 %), and a teacher evaluated after 750
    # steps scored 6 dB below copy-last-frame at horizon 1.
    time_distribution: str = "uniform"
    reward_weight: float = 1.0
    termination_weight: float = 0.2

    def validate(self) -> None:
        if self.time_distribution not in ("uniform", "logit_normal"):
            raise ConfigError(f"time_distribution: expected 'uniform' or 'logit_normal', got {self.time_distribution!r}")


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


class TeacherTask:
    def __init__(self, config: TeacherTrainingConfig):
        self.config = config
        dataset = config.data.load_training()
        self.tokenizer = load_tokenizer(load_bundle(Path(config.bundle)))
        tok = self.tokenizer.config
        rewards = 1 if dataset.rewards.ndim == 1 else dataset.rewards.shape[1]
        expected = {"latent_channels": tok.latent_channels, "grid": tok.grid, "action_dim": dataset.actions.shape[1],
                    "rewards": rewards}
        for key, value in expected.items():
            if getattr(config.model, key) != value:
                raise ConfigError(f"teacher.model.{key}: {getattr(config.model, key)} does not match the tokenizer/dataset ({value})")
        self.sampler = WindowSampler(dataset, length=config.model.context_frames)
        self.latents = self._latents(dataset)
        self.scene = dataset.manifest.scene
        self.model = Backbone(config.model)

    def _latents(self, dataset) -> torch.Tensor:
        path = Path(self.config.run) / "latents.safetensors"
        key = _fingerprint(self.tokenizer)
        if path.exists():
            cached = load_tree(path)
            if cached["tokenizer"] == key and cached["frames"] == dataset.num_frames:
                return cached["latents"]
        logger.info("encoding %d frames with the tokenizer (cached in %s)", dataset.num_frames, path)
        device = Distributed.from_environment().device(self.config.train.device)
        latents = encode_frames(self.tokenizer, dataset.frames, batch=256 if device.type == "cpu" else 4096, device=device)
        save_tree(path, {"tokenizer": key, "frames": dataset.num_frames, "latents": latents})
        return latents

    def loss(self, model, batch: int, generator: torch.Generator):
        c = self.config
        device = next(model.parameters()).device
        if self.latents.device != device:
            self.latents = self.latents.to(device)  # once: the whole cache lives beside the model
        window = draw_windows(self.sampler, batch, generator)
        index = torch.from_numpy(window.start)[:, None] + torch.arange(self.sampler.length)  # (B, L)
        # Every random draw on the CPU generator, in a fixed order: the same batch on any device.
        logit_normal = (0.0, 1.0) if c.time_distribution == "logit_normal" else None
        t = sample_training_times(tuple(index.shape), generator, logit_normal=logit_normal)
        clean = torch.rand(index.shape, generator=generator) < c.clean_context_share
        t = torch.where(clean, c.context_noise * torch.rand(index.shape, generator=generator), t).to(device)
        noise = torch.randn((*index.shape, *self.latents.shape[1:]), generator=generator).to(device)
        x0 = self.latents[index.to(device)].float()  # (B, L, N, C)
        actions, clean = torch.from_numpy(window.actions).to(device), clean.to(device)
        out = model(add_noise(x0, noise, t), t, actions)
        # Context frames carry no denoising loss: at t <= context_noise the velocity's noise
        # part is all but invisible in x_t, so its loss is irreducible and only adds
        # gradient noise; they are there to be attended to.
        denoised = (~clean).float()  # (B, L)
        # Losses in float32 also under bf16 autocast.
        diffusion = flow_matching_loss(out.velocity.float(), x0, noise, weight=denoised) / denoised.mean().clamp_min(1e-6)
        # Heads: a reset frame has no reward or termination of its own.
        has_step = torch.from_numpy(~window.first).float().to(device)
        rewards = torch.from_numpy(window.rewards).reshape(out.reward.shape).to(device)  # (B, L[, agents]) -> (B, L, K)
        terminated = torch.from_numpy(window.terminated).float().to(device)
        reward = ((out.reward.float() - rewards).square().mean(-1) * has_step).sum() / has_step.sum().clamp_min(1)
        termination = F.binary_cross_entropy_with_logits(out.termination_logit.float(), terminated, reduction="none")
        termination = (termination * has_step).sum() / has_step.sum().clamp_min(1)
        loss = diffusion + c.reward_weight * reward + c.termination_weight * termination
        return loss, {"diffusion": diffusion.detach(), "reward_mse": reward.detach(), "termination_bce": termination.detach()}

    def export(self, ema_model: Backbone, metadata: dict) -> None:
        c = self.config
        update_bundle(
            c.bundle,
            components={"teacher": (ema_model, {"model": asdict(c.model), "context_noise": c.context_noise})},
            metadata={"scene": self.scene, "teacher_training": metadata},
        )


def _fingerprint(module: torch.nn.Module) -> str:
    """A short digest of a module's weights: the latent cache is valid for these only."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
