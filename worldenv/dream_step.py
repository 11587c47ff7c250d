"""One frame of a dream, written once: ``dream_step`` samples the next frame of every
dream against its KV cache and commits it. ``WorldModel.step`` serves it, Self-Forcing
trains the student on it (``distill/self_forcing.py``), and the teacher's own-rollout
lever trains on its frames (``training/teacher_task.py``).

Gradients are the caller's: nothing here switches grad mode. Inference wraps a step in
``torch.inference_mode``; Self-Forcing enables gradients, which then flow through the
sampling passes into the returned latent. What is committed never carries them (the cache
and the state store detached tensors); the caller only chooses ``FastPaths`` that suit
its grad mode (``FastPaths.for_device(device, gradients=...)``).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from worldenv.diffusion.flow import guide, timesteps
from worldenv.diffusion.samplers import sample
from worldenv.memory import REFERENCE, DreamState, FastPaths, KVCache
from worldenv.nn.backbone import Backbone


@dataclass
class DreamStep:
    latent: Tensor  # (B, N, C) float32: the sampled frame (carrying the caller's gradients, if any)
    committed: Tensor  # (B, N, C) in the state's dtype, detached: what was committed
    reward: Tensor  # (B, K) float32: the heads of the commit pass, one reward per agent
    termination_logit: Tensor  # (B,) float32


def dream_step(
    backbone: Backbone,
    cache: KVCache,
    state: DreamState,
    actions: Tensor,
    noise: Tensor,
    sampler: str = "euler",
    steps: int = 1,
    *,
    guidance: float = 1.0,
    keep: Callable[[Tensor], Tensor] | None = None,
    fast: FastPaths = REFERENCE,
) -> DreamStep:
    """Sample every dream's next frame under ``actions`` (B, A) from ``noise`` (B, N, C)
    with ``sampler`` in ``steps`` steps (``diffusion/samplers.py``), then commit it clean
    (t = 0) to ``cache`` and ``state`` in one more network pass.

    The networks run in the state's dtype; the sampler integrates in float32 whatever it
    is (a bfloat16 state would round every Euler step to 3 significant digits).
    ``guidance`` g: each velocity is ``v(0) + g * (v(a) - v(0))``, ``v(0)`` the answer
    under the zero action, at one more pass per evaluation (g = 1: the model as trained).
    ``keep``: the detached sample (B, N, C) float32 -> what is committed (B, N, C) in the
    state's dtype (default: the sample itself); e.g. the latent of the decoded frame.
    """
    dtype = state.last_latent.dtype
    actions = actions[:, None].to(dtype)  # (B, 1, A)

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        x, t = x[:, None].to(dtype), t[:, None].to(dtype)
        conditioned = backbone(x, t, actions, cache, state, fast=fast).velocity[:, 0].float()
        if guidance == 1.0:
            return conditioned
        neutral = backbone(x, t, torch.zeros_like(actions), cache, state, fast=fast).velocity[:, 0].float()
        return guide(neutral, conditioned, guidance)

    latent = sample(sampler, velocity, noise, timesteps(steps, device=noise.device))
    committed = keep(latent.detach()) if keep is not None else latent.detach().to(dtype)
    clean = torch.zeros(committed.shape[0], 1, device=committed.device, dtype=dtype)
    out = backbone.commit(committed[:, None], clean, actions, cache, state, fast)
    return DreamStep(latent, committed, out.reward[:, 0].float(), out.termination_logit[:, 0].float())


def prime_cache(
    backbone: Backbone, latents: Tensor, actions: Tensor, cache: KVCache, state: DreamState, fast: FastPaths = REFERENCE
) -> None:
    """Commit clean context ``latents`` (B, T, N, C) and the actions that led to them (B, T, A)
    to ``cache`` and ``state``: the first window's worth in one pass (nothing leaves the
    cache yet, and one pass equals frame by frame), the rest one frame at a time, as a
    dream commits them, so frames leave the window (for memory) exactly as they would have."""
    B, T = latents.shape[:2]
    clean = torch.zeros(B, T, device=latents.device, dtype=latents.dtype)
    first = min(T, cache.shape.window_frames)
    backbone.commit(latents[:, :first], clean[:, :first], actions[:, :first], cache, state, fast)
    for frame in range(first, T):
        step = slice(frame, frame + 1)
        backbone.commit(latents[:, step], clean[:, step], actions[:, step], cache, state, fast)
