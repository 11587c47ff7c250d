"""Training the frame tokenizer: single frames from the training episodes,
edge-weighted reconstruction loss (``worldenv.nn.tokenizer``)."""

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from worldenv.checkpoint import load_bundle, update_bundle
from worldenv.config import ConfigError
from worldenv.data.sampler import WindowSampler
from worldenv.nn.tokenizer import Tokenizer, TokenizerConfig, reconstruction_loss
from worldenv.training.data import DataConfig, draw_windows
from worldenv.training.loop import TrainConfig
from worldenv.world_model import load_tokenizer

STATISTICS_FRAMES = 4096  # frames used to measure the latents' per-channel mean and std


@dataclass
class TokenizerTrainingConfig:
    data: DataConfig
    bundle: str  # checkpoint bundle directory the trained tokenizer is written into
    run: str  # run directory (checkpoints, metrics log)
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Start from the bundle's tokenizer and train its decoder alone. The encoder, and so
    # every latent the bundle's world models were trained on, stays as it is; the decoder,
    # which draws every dreamed frame, keeps learning. ``model`` must describe the same
    # network (its loss settings, edge_weight and latent_noise, may differ).
    decoder_only: bool = False


ARCHITECTURE = ("image_size", "channels", "blocks_per_level", "latent_channels")


class TokenizerTask:
    def __init__(self, config: TokenizerTrainingConfig):
        self.config = config
        self.dataset = config.data.load_training()
        self.sampler = WindowSampler(self.dataset, length=1)
        self.model = Tokenizer(config.model)
        if config.decoder_only:
            self._load_frozen_encoder()

    def _load_frozen_encoder(self) -> None:
        shipped = load_tokenizer(load_bundle(Path(self.config.bundle)))
        mismatched = [key for key in ARCHITECTURE if getattr(shipped.config, key) != getattr(self.config.model, key)]
        if mismatched:
            key = mismatched[0]
            raise ConfigError(
                f"tokenizer.model.{key}: {getattr(self.config.model, key)} differs from the bundle's tokenizer "
                f"({getattr(shipped.config, key)}); decoder_only trains that tokenizer's decoder"
            )
        self.model.load_state_dict(shipped.state_dict())
        self.model.train()
        self.model.encoder.requires_grad_(False)

    def loss(self, model, batch: int, generator: torch.Generator):
        device = next(model.parameters()).device
        frames = torch.from_numpy(draw_windows(self.sampler, batch, generator).frames[:, 0]).to(device)  # (B, H, W, 3) uint8
        c = self.config.model
        return reconstruction_loss(model, frames, c.edge_weight, c.latent_noise, generator)

    def export(self, ema_model: Tokenizer, metadata: dict) -> None:
        # A frozen encoder keeps the bundle's latent statistics: its latents must not move.
        key = "tokenizer_decoder_training" if self.config.decoder_only else "tokenizer_training"
        if not self.config.decoder_only:
            index = torch.linspace(0, self.dataset.num_frames - 1, STATISTICS_FRAMES).long()
            ema_model.set_latent_statistics(torch.from_numpy(self.dataset.frames[index.numpy()]))
        update_bundle(
            self.config.bundle,
            components={"tokenizer": (ema_model, {"model": asdict(self.config.model)})},
            metadata={"scene": self.dataset.manifest.scene, key: metadata},
        )
