"""Per-env Gaussian noise from counters, without a Python loop over envs.

Every env of a batch owns a seed (drawn from its ``np_random``) and a counter
(its frame number). The noise of one env's frame is a pure function of
``(seed, counter, element)``: a 32-bit integer hash (murmur3's finaliser) gives
two uniforms per element, Box-Muller turns them into a normal. So the same
seed and actions reproduce a dream exactly, whatever the batch size or the
env's place in the batch, with one vectorised computation per step on any
device (no per-env ``torch.Generator`` calls, no host sync).
"""

import math

import torch

MASK32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3 fmix32 on int64 tensors holding 32-bit values (products wrap mod 2^64, masked back)."""
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & MASK32
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & MASK32
    return x ^ (x >> 16)


def counter_noise(seeds: torch.Tensor, counters: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise (B, *shape): env b's block depends only on (seeds[b], counters[b])."""
    device = seeds.device
    numel = math.prod(shape)
    element = torch.arange(numel, device=device, dtype=torch.int64)  # (E,)
    key = _mix32((seeds[:, None] & MASK32) ^ _mix32((counters[:, None] * 0x9E3779B1 + 0x7F4A7C15) & MASK32))  # (B, 1)
    u1 = _mix32(key ^ _mix32(2 * element))
    u2 = _mix32(key ^ _mix32(2 * element + 1) ^ 0x5BD1E995)
    # (0, 1] and [0, 1): the log never sees zero.
    u1 = (u1.double() + 1.0) / 4294967296.0
    u2 = u2.double() / 4294967296.0
    normal = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return normal.to(dtype).reshape(len(seeds), *shape)
