"""Training the frame tokenizer: single frames from the training episodes,
edge-weighted reconstruction loss (``worldenv.nn.tokenizer``)."""

from dataclasses import asdict, dataclass, field

import torch

from worldenv.checkpoint import update_bundle
from worldenv.data.sampler import WindowSampler
from worldenv.nn.tokenizer import Tokenizer, TokenizerConfig, reconstruction_loss
from worldenv.training.data import DataConfig, draw_windows
from worldenv.training.loop import TrainConfig

STATISTICS_FRAMES = 4096  # frames used to measure the latents' per-channel mean and std


@dataclass
class TokenizerTrainingConfig:
    data: DataConfig
    bundle: str  # checkpoint bundle directory the trained tokenizer is written into
    run: str  # run directory (checkpoints, metrics log)
    model: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class TokenizerTask:
    def __init__(self, config: TokenizerTrainingConfig):
        self.config = config
        self.dataset = config.data.load_training()
        self.sampler = WindowSampler(self.dataset, length=1)
        self.model = Tokenizer(config.model)

    def loss(self, model, batch: int, generator: torch.Generator):
        device = next(model.parameters()).device
        frames = torch.from_numpy(draw_windows(self.sampler, batch, generator).frames[:, 0]).to(device)  # (B, H, W, 3) uint8
        c = self.config.model
        return reconstruction_loss(model, frames, c.edge_weight, c.latent_noise, generator)

    def export(self, ema_model: Tokenizer, metadata: dict) -> None:
        index = torch.linspace(0, self.dataset.num_frames - 1, STATISTICS_FRAMES).long()
        ema_model.set_latent_statistics(torch.from_numpy(self.dataset.frames[index.numpy()]))
        update_bundle(
            self.config.bundle,
            components={"tokenizer": (ema_model, {"model": asdict(self.config.model)})},
            metadata={"scene": self.dataset.manifest.scene, "tokenizer_training": metadata},
        )
