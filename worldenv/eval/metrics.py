"""Image metrics for dream-vs-ground-truth frames, batched, in torch.

Frames are ``(B, H, W, C)`` (HWC, as the envs produce them), uint8 or float, as torch
tensors or numpy arrays; every metric returns one value per image, a float64 ``Tensor[B]``
on the frames' device. Float64 keeps the sums exact enough to match reference
implementations to ~1e-12 at these sizes.
"""

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

# Wang et al. 2004 constants and window (the paper's and skimage's gaussian-weights default).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def psnr(a: ArrayLike | torch.Tensor, b: ArrayLike | torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: ``10 log10(data_range^2 / MSE)``.

    Identical images give ``+inf`` (no cap): a caller averaging over a horizon should
    report how many were exact rather than let a cap bias the mean.
    """
    x, y = _pair(a, b)
    mse = (x - y).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim(a: ArrayLike | torch.Tensor, b: ArrayLike | torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Mean structural similarity per image (Wang et al. 2004, eq. 13 with a gaussian window).

    Statistics are weighted by an 11x11 gaussian (sigma 1.5, normalised), population
    (co)variances, ``C1 = (0.01 R)^2`` and ``C2 = (0.03 R)^2``; SSIM is averaged over the
    positions whose window lies inside the image, per channel, then over channels. This
    equals skimage's ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``, which filters the whole
    image and then crops the 5-pixel border where the filter saw padding.
    """
    x, y = _pair(a, b)
    height, width = x.shape[1:3]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"ssim needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {height}x{width}")
    channels = x.shape[-1]
    x, y = x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2)  # (B, C, H, W)
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (B, 5C, H, W)
    window = _gaussian(SSIM_WINDOW, SSIM_SIGMA, stats.dtype, stats.device)
    groups = stats.shape[1]
    # The 2-D gaussian is separable: filter rows, then columns, each channel on its own; no
    # padding, so only windows that lie inside the image are computed.
    stats = F.conv2d(stats, window.view(1, 1, 1, -1).expand(groups, 1, 1, -1), groups=groups)
    stats = F.conv2d(stats, window.view(1, 1, -1, 1).expand(groups, 1, -1, 1), groups=groups)
    mu_x, mu_y, xx, yy, xy = stats.split(channels, dim=1)  # each (B, C, H-10, W-10)
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    # Every channel has as many positions, so the mean over all is the mean of channel means.
    return ssim_map.mean(dim=(1, 2, 3))


def foreground_iou(
    a: ArrayLike | torch.Tensor,
    b: ArrayLike | torch.Tensor,
    background: ArrayLike | torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """IoU per image of the foreground masks of ``a`` and ``b``.

    A pixel is foreground when some channel differs from ``background`` by more than
    ``threshold`` (in the frames' units). ``background`` is a colour ``(C,)``, an image
    ``(H, W, C)`` or one image per frame ``(B, H, W, C)``. Small task objects (a target, a
    coloured block) barely move PSNR when missing; this metric shows whether the dream
    drew them at all. When neither mask has a pixel the IoU is 1: both agree there is
    nothing to see.
    """
    x, y = _pair(a, b)
    reference = _tensor(background).to(device=x.device, dtype=torch.float64)
    if reference.ndim not in (1, 3, 4) or reference.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"background must be a colour (C,), an image (H, W, C) or images (B, H, W, C) with C={x.shape[-1]}, "
            f"got shape {tuple(reference.shape)}"
        )
    mask_a = ((x - reference).abs() > threshold).any(dim=-1)  # (B, H, W)
    mask_b = ((y - reference).abs() > threshold).any(dim=-1)
    intersection = (mask_a & mask_b).sum(dim=(1, 2)).to(torch.float64)
    union = (mask_a | mask_b).sum(dim=(1, 2)).to(torch.float64)
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


def _pair(a: ArrayLike | torch.Tensor, b: ArrayLike | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both batches as float64 ``(B, H, W, C)`` tensors, after checking they are comparable."""
    x, y = _tensor(a), _tensor(b)
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(f"expected two frame batches of the same shape (B, H, W, C), got {tuple(x.shape)} and {tuple(y.shape)}")
    for t in (x, y):
        if t.dtype != torch.uint8 and not t.dtype.is_floating_point:
            raise ValueError(f"frames must be uint8 or floating point, got {t.dtype}")
    return x.to(torch.float64), y.to(device=x.device, dtype=torch.float64)


def _tensor(data: ArrayLike | torch.Tensor) -> torch.Tensor:
    if isinstance(data, torch.Tensor):
        return data
    array = np.asarray(data)
    # Env observations can be read-only numpy views, which torch.from_numpy warns about.
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _gaussian(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 1-D gaussian of ``size`` taps, as scipy.ndimage.gaussian_filter builds it."""
    offsets = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()
