"""The rectified-flow noising process and its training loss.

Conventions (rectified flow, Liu et al. 2022, arXiv 2209.03003; flow matching,
Lipman et al. 2022, arXiv 2210.02747; as in SD3, Esser et al. 2024, arXiv
2403.03206): t in [0, 1], t = 0 is clean data, t = 1 is pure Gaussian noise,

    x_t = (1 - t) * x0 + t * noise,        v = dx_t/dt = noise - x0,

and sampling integrates the ODE dx/dt = v(x, t) from t = 1 down to t = 0.
In the notation of the diffusion literature alpha_t = 1 - t and sigma_t = t.

Noise levels ``t`` are per sample ``(B,)`` or per frame ``(B, T)`` (diffusion
forcing, Chen et al. 2024, arXiv 2407.01392: every frame of a window carries its
own level); they broadcast over the trailing dims of ``x`` ``(B, T, N, C)``.
"""

import torch
from torch import Tensor


def append_dims(t: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dims to ``t`` until it has ``ndim`` dims (k-diffusion ``append_dims``)."""
    if t.ndim > ndim:
        raise ValueError(f"t has {t.ndim} dims, more than the {ndim} of the tensor it scales")
    return t.reshape(t.shape + (1,) * (ndim - t.ndim))


def _levels_for(t: Tensor, x: Tensor) -> Tensor:
    """``t`` of shape ``x.shape[:k]`` (``()``, ``(B,)`` or ``(B, T)``), reshaped to broadcast over ``x``."""
    if tuple(t.shape) != tuple(x.shape[: t.ndim]):
        raise ValueError(f"noise levels of shape {tuple(t.shape)} do not match the leading dims of x {tuple(x.shape)}")
    return append_dims(t, x.ndim)


def add_noise(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """x_t = (1 - t) x0 + t noise (rectified flow interpolant); same dtype as ``x0``."""
    if noise.shape != x0.shape:
        raise ValueError(f"noise {tuple(noise.shape)} and x0 {tuple(x0.shape)} must have the same shape")
    t = _levels_for(t, x0)
    # float32 t promotes a bf16 product; cast back so x_t keeps the data dtype.
    return ((1 - t) * x0 + t * noise).to(x0.dtype)


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """The regression target v = dx_t/dt = noise - x0 (constant along each straight path)."""
    return noise - x0


def x0_from_velocity(x_t: Tensor, v: Tensor, t: Tensor) -> Tensor:
    """x0 = x_t - t v: the data prediction implied by a velocity (exact inverse of ``add_noise``)."""
    return (x_t - _levels_for(t, x_t) * v).to(x_t.dtype)


def noise_from_velocity(x_t: Tensor, v: Tensor, t: Tensor) -> Tensor:
    """noise = x_t + (1 - t) v: the noise prediction implied by a velocity."""
    return (x_t + (1 - _levels_for(t, x_t)) * v).to(x_t.dtype)


def guide(neutral: Tensor, conditioned: Tensor, guidance: float) -> Tensor:
    """Classifier-free guidance of a velocity field: ``neutral + g * (conditioned - neutral)``
    (g = 1: the conditioned field itself; g > 1: what the condition changes, amplified)."""
    return neutral + guidance * (conditioned - neutral)


def sample_training_times(
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    *,
    logit_normal: tuple[float, float] | None = (0.0, 1.0),
    eps: float = 1e-5,
) -> Tensor:
    """Draw float32 training noise levels in [eps, 1 - eps], e.g. ``shape=(B, T)`` for per-frame levels.

    Default: logit-normal, t = sigmoid(mean + std * z), z ~ N(0, 1), with
    (mean, std) = (0, 1), the best rectified-flow schedule of SD3 (Esser et al.
    2024, §3.1): it spends training on intermediate t, where the
    velocity is hardest to predict, and little on the ends, where it is nearly
    a fixed function of x_t. ``logit_normal=None`` gives uniform t (Liu et al.
    2022). The clamp to [eps, 1 - eps] keeps the log-SNR log((1 - t) / t)
    finite for models that embed it.
    """
    if logit_normal is None:
        u = torch.rand(shape, generator=generator, device=device)
        return eps + (1 - 2 * eps) * u
    mean, std = logit_normal
    z = torch.randn(shape, generator=generator, device=device)
    return torch.sigmoid(mean + std * z).clamp(eps, 1 - eps)


def flow_matching_loss(velocity_pred: Tensor, x0: Tensor, noise: Tensor, weight: Tensor | None = None) -> Tensor:
    """Conditional flow-matching loss mean(w * ||v_pred - (noise - x0)||^2) (Lipman et al. 2022, the CFM objective).

    ``weight`` is per sample ``(B,)``, per frame ``(B, T)`` (e.g. 0 on context
    frames) or any shape that broadcasts after appending trailing dims; the
    weighted squared error is averaged over all elements, so ``weight = 1``
    gives the plain mean. Reduced in float32 whatever the input dtype.
    """
    if not velocity_pred.shape == x0.shape == noise.shape:
        raise ValueError(
            f"velocity_pred {tuple(velocity_pred.shape)}, x0 {tuple(x0.shape)} and noise "
            f"{tuple(noise.shape)} must have the same shape"
        )
    err = (velocity_pred.float() - velocity_target(x0.float(), noise.float())).square()
    if weight is not None:
        err = err * append_dims(weight.float(), err.ndim)
    return err.mean()


def timesteps(num_steps: int, *, shift: float = 1.0, device: torch.device | str | None = None) -> Tensor:
    """``num_steps + 1`` float32 times from 1.0 to 0.0, warped by t' = shift t / (1 + (shift - 1) t) (SD3 §5.3.2).

    shift = 1 is uniform; shift > 1 spends more steps at high noise (near t = 1),
    where the coarse structure of a sample is decided.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not shift > 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    # float64 on the host keeps the endpoints exact after the warp; one copy to device.
    t = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    t = shift * t / (1 + (shift - 1) * t)
    return t.to(device=device, dtype=torch.float32)
