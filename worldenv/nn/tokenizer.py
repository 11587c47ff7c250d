"""Frame tokenizer: a convolutional autoencoder from ``(H, W, 3)`` frames to a
grid of latent tokens ``(H/f, W/f, C)``, and back.

The world model runs on its tokens, so whatever the tokenizer drops is gone
from every dream. A plain pixel MSE lets a 5-pixel target vanish while PSNR
still looks fine (the background dominates the mean), so the loss weights each
pixel by how much structure it carries (``edge_weights``): edges and small
objects count many times more than flat background.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TokenizerConfig:
    image_size: int = 64
    channels: tuple[int, ...] = (32, 64, 128)  # per resolution; len(channels) halvings: 64 -> 8
    blocks_per_level: int = 1
    latent_channels: int = 16
    edge_weight: float = 10.0  # extra loss weight on edge pixels (see edge_weights)
    # Training only: Gaussian noise added to the latents before decoding, as a fraction of
    # their per-channel std, so that the decoder turns latents near the data's (a world
    # model's imperfect predictions) into clean frames, and nearby latents mean nearby frames.
    latent_noise: float = 0.0

    def validate(self) -> None:
        from worldenv.config import ConfigError

        if self.image_size % 2 ** len(self.channels):
            raise ConfigError(f"image_size: {self.image_size} is not divisible by 2**{len(self.channels)}")

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** len(self.channels)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class Tokenizer(nn.Module):
    """``encode``: uint8 or [-1, 1] frames (B, H, W, 3) -> latents (B, h, w, C), normalised
    to zero mean and unit variance per channel (``latent_mean``/``latent_std``,
    measured on data after training, see ``set_latent_statistics``);
    ``decode``: latents -> frames in [-1, 1] (B, H, W, 3).

    The first halving is a lossless space-to-depth (pixel unshuffle) and the last
    doubling its inverse (sub-pixel convolution), so no convolution runs at full
    resolution: four times cheaper on a CPU, and sharp to the pixel.
    """

    # Buffers (register_buffer below), declared so that the checker knows them as tensors.
    latent_mean: torch.Tensor
    latent_std: torch.Tensor

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config
        c, n = config.channels, config.blocks_per_level
        encoder: list[nn.Module] = [nn.PixelUnshuffle(2), nn.Conv2d(12, c[0], 3, padding=1)]
        for level, width in enumerate(c):
            encoder += [ResBlock(width) for _ in range(n)]
            if level + 1 < len(c):
                encoder.append(nn.Conv2d(width, c[level + 1], 4, stride=2, padding=1))
        encoder += [nn.GroupNorm(8, c[-1]), nn.SiLU(), nn.Conv2d(c[-1], config.latent_channels, 1)]
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = [nn.Conv2d(config.latent_channels, c[-1], 3, padding=1)]
        for level in reversed(range(len(c))):
            decoder += [ResBlock(c[level]) for _ in range(n)]
            if level > 0:
                decoder += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c[level], c[level - 1], 3, padding=1)]
        decoder += [nn.GroupNorm(8, c[0]), nn.SiLU(), nn.Conv2d(c[0], 12, 3, padding=1), nn.PixelShuffle(2)]
        self.decoder = nn.Sequential(*decoder)
        self.register_buffer("latent_mean", torch.zeros(config.latent_channels))
        self.register_buffer("latent_std", torch.ones(config.latent_channels))

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        x = to_unit_range(frames).to(self.latent_mean.dtype).permute(0, 3, 1, 2)  # (B, 3, H, W), in the weights' dtype
        z = self.encoder(x).permute(0, 2, 3, 1)  # (B, h, w, C)
        return (z - self.latent_mean) / self.latent_std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.to(self.latent_std.dtype) * self.latent_std + self.latent_mean
        return self.decoder(z.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, H, W, 3)

    def forward(self, frames: torch.Tensor, latent_noise: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reconstruct ``frames``; in training, through latents perturbed by ``latent_noise`` (see the config)."""
        z = self.encode(frames)
        if latent_noise > 0:
            scale = latent_noise * z.detach().std(dim=(0, 1, 2), keepdim=True)
            noise = torch.randn(z.shape, generator=generator)  # on the generator's device (the CPU in training)
            z = z + scale * noise.to(z.device, z.dtype)
        return self.decode(z)

    @torch.no_grad()
    def set_latent_statistics(self, frames: torch.Tensor) -> None:
        """Measure per-channel mean and std of the raw latents of ``frames``."""
        self.latent_mean.zero_()
        self.latent_std.fill_(1.0)
        z = self.encode(frames).reshape(-1, self.config.latent_channels)
        self.latent_mean.copy_(z.mean(0))
        self.latent_std.copy_(z.std(0).clamp_min(1e-4))


def to_unit_range(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]; float input is taken as already in [-1, 1]."""
    if frames.dtype == torch.uint8:
        return frames.float().div(127.5).sub(1.0)
    return frames


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    return frames.clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8)


def edge_weights(target: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-pixel loss weights ``1 + strength * e`` with ``e`` in [0, 1] the (dilated)
    gradient magnitude of the target: (B, H, W, 3) in [-1, 1] -> (B, H, W, 1).

    Dilation by a 3x3 max-pool widens each edge to cover both of its sides, so a
    small object is weighted over its whole area.
    """
    gray = target.mean(-1, keepdim=True).permute(0, 3, 1, 2)  # (B, 1, H, W)
    dx = gray[..., :, 1:] - gray[..., :, :-1]
    dy = gray[..., 1:, :] - gray[..., :-1, :]
    # A pixel's largest step to a 4-neighbour: both sides of an edge light up.
    magnitude = (
        torch.stack([F.pad(dx, (0, 1)), F.pad(dx, (1, 0)), F.pad(dy, (0, 0, 0, 1)), F.pad(dy, (0, 0, 1, 0))]).abs().amax(0)
    )
    magnitude = F.max_pool2d(magnitude, 3, stride=1, padding=1)
    edges = (magnitude / 0.5).clamp(max=1.0)  # a step of a quarter of the range counts fully
    return (1.0 + strength * edges).permute(0, 2, 3, 1)


def reconstruction_loss(
    tokenizer: nn.Module,
    frames: torch.Tensor,
    edge_weight: float,
    latent_noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Edge-weighted MSE plus L1 on [-1, 1] pixels; the plain MSE is reported as well.
    ``tokenizer`` may be wrapped (DistributedDataParallel): only its forward is used."""
    target = to_unit_range(frames)
    recon = tokenizer(target, latent_noise, generator).float()  # float32 loss under bf16 autocast
    weights = edge_weights(target, edge_weight)
    error = recon - target
    loss = (weights * error.square()).mean() + 0.1 * (weights * error.abs()).mean()
    return loss, {"mse": error.detach().square().mean()}
