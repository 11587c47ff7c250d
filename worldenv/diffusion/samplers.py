"""ODE samplers for rectified flow, as short pure functions (k-diffusion ``sampling.py`` style).

Every sampler takes ``velocity_fn(x, t) -> v`` with ``x`` of shape ``(B, ...)``
and ``t`` of shape ``(B,)``, a start ``x`` at ``timesteps[0]`` and a 1-D tensor
of decreasing times (see ``flow.timesteps``), and returns x at
``timesteps[-1]``. They are deterministic (all noise is in the caller's ``x``),
keep the dtype of ``x``, never read tensor values on the host (no ``.item()``,
no branch on a value), and leave grad mode to the caller: inference wraps them
in ``torch.inference_mode``, Self-Forcing backpropagates through them.
"""

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from worldenv.diffusion.flow import x0_from_velocity

VelocityFn = Callable[[Tensor, Tensor], Tensor]


def _steps(timesteps: Tensor, x: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    """Pairs (t, t_next) of 0-dim tensors on the device of ``x``."""
    if timesteps.ndim != 1 or len(timesteps) < 2:
        raise ValueError(f"timesteps must be 1-D with at least 2 entries, got shape {tuple(timesteps.shape)}")
    if x.ndim < 1:
        raise ValueError("x must have a batch dim (B, ...)")
    timesteps = timesteps.to(x.device)
    return zip(timesteps[:-1], timesteps[1:])


def _batch(t: Tensor, x: Tensor) -> Tensor:
    """A 0-dim time as the per-sample ``(B,)`` tensor that ``velocity_fn`` takes."""
    return t.expand(x.shape[0])


def sample_euler(velocity_fn: VelocityFn, x: Tensor, timesteps: Tensor) -> Tensor:
    """Euler's method x <- x + (t_next - t) v(x, t), the sampler of rectified flow (Liu et al. 2022); N calls."""
    for t, t_next in _steps(timesteps, x):
        x = x + (t_next - t) * velocity_fn(x, _batch(t, x))
    return x


def sample_heun(velocity_fn: VelocityFn, x: Tensor, timesteps: Tensor) -> Tensor:
    """Heun's second-order method (Karras et al. 2022, Alg. 1, deterministic); 2N - 1 calls.

    As in EDM, the last step is a plain Euler step: there the corrector would
    evaluate the field at t = 0, where it is singular for concentrated data
    (v = (x - x0) / t). The choice is made by position, not by value, so no
    host sync is needed.
    """
    steps = _steps(timesteps, x)
    last = len(timesteps) - 2
    for i, (t, t_next) in enumerate(steps):
        dt = t_next - t
        v = velocity_fn(x, _batch(t, x))
        if i < last:
            # Corrector: average the slopes at both ends of the Euler (predictor) step.
            v = (v + velocity_fn(x + dt * v, _batch(t_next, x))) / 2
        x = x + dt * v
    return x


def _log_snr(t: Tensor) -> Tensor:
    """lambda(t) = log(alpha_t / sigma_t) = log((1 - t) / t); -inf at t = 1, +inf at t = 0."""
    return torch.log1p(-t) - torch.log(t)


def sample_dpm_solver(velocity_fn: VelocityFn, x: Tensor, timesteps: Tensor) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095, Alg. 2) for rectified flow; N calls.

    Data-prediction form with alpha_t = 1 - t, sigma_t = t, lambda = log((1 - t) / t).
    At step i, from t to t_next, with x0_i = x - t v(x, t) (``x0_from_velocity``):

        h_i = lambda(t_next) - lambda(t),   r_i = h_{i-1} / h_i
        D_i = x0_i + (x0_i - x0_{i-1}) / (2 r_i)          (multistep correction)
        x  <- (sigma_next / sigma) x - alpha_next (exp(-h_i) - 1) D_i

    Since exp(-h_i) = alpha sigma_next / (sigma alpha_next), the update is
    x <- (t_next / t) x + (1 - t_next / t) D_i, which is finite at both ends
    (with D_i = x0_i it is exactly the Euler step). The first step is first
    order (no x0_{i-1}). A step from t = 1 is infinitely long in lambda, so the
    next step's correction 1 / (2 r_i) = h_i / (2 h_{i-1}) is 0 (its exact limit). A step to
    t = 0 has h = inf and a divergent correction; like k-diffusion it falls
    back to first order, which is chosen here by ``torch.where``, without a sync.
    """
    x0_prev, h_prev = None, None
    for t, t_next in _steps(timesteps, x):
        x0 = x0_from_velocity(x, velocity_fn(x, _batch(t, x)), t)
        h = _log_snr(t_next) - _log_snr(t)
        d = x0
        if x0_prev is not None and h_prev is not None:  # set together, after the first step
            half_inv_r = torch.where(torch.isfinite(h), h / (2 * h_prev), 0.0)  # 1 / (2 r_i)
            d = x0 + half_inv_r * (x0 - x0_prev)
        ratio = t_next / t  # sigma_next / sigma
        x = ratio * x + (1 - ratio) * d
        x0_prev, h_prev = x0, h
    return x


SAMPLERS: dict[str, Callable[[VelocityFn, Tensor, Tensor], Tensor]] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "dpm": sample_dpm_solver,
}


def sample(name: str, velocity_fn: VelocityFn, x: Tensor, timesteps: Tensor) -> Tensor:
    """Run the sampler registered as ``name`` in ``SAMPLERS``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](velocity_fn, x, timesteps)
