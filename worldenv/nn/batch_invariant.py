"""Numerics that do not depend on how many dreams share a batch.

CPU BLAS (MKL/oneDNN) picks a different kernel, with a different summation
order, for small matrices (float32: fewer than 4 rows on an AMD EPYC, fewer than 16
on an Intel Xeon with AMX) and for convolutions over a single image, so the same
dream computed alone or inside a batch would differ in the last float bit, and a
pixel may flip by one level. Padding those small calls to ``MIN_ROWS`` rows makes a
dream's numbers the same at every batch size, which is what lets a vector env
reproduce the single env exactly (checked for 4 to 16384 rows on the AMD machine,
for 1 to 64 rows against 64 on the Intel one, 1-2 threads, this torch build; GPU
kernels make no such promise). Linear layers need ``MIN_ROWS`` rows. Convolutions and
group norms are worse: their kernels change with the image count in ways that
depend on the channel counts and threads (odd counts differ at 2 threads; small
nets differ below 16 images), so on the CPU the tokenizer runs in chunks of
exactly ``IMAGE_CHUNK`` images (``in_fixed_chunks``). The cost: none for the
per-frame vectors; one padding frame decoded when a single dream steps, and a
few hundred microseconds of call overhead per chunk at large batches.

All of this is float32 on the CPU. bfloat16 kernels (oneDNN's AMX) change their
blocking with the row count for small inner dimensions, so a bfloat16 dream makes no
such promise, as on a GPU (``world_model.resolve_dtype``).

Batched matrix products (``einsum``, ``@`` over batch dimensions) are no safer:
ActionFlow's contraction over its action entries, an einsum, gave other last bits for
a 4-frame pass (a dream's start, priming its context) of one dream than of 2 to 64, and
the shipped reacher's dreams drifted apart from there, by 18 levels within 30 steps
(issue 32); it now sums entry by entry, elementwise. The rotary product
(``attention.rotary``) is bit-identical for 1 to 64 dreams at 1-2 threads (checked).
The tiny test bundles have no ActionFlow, so tests/test_dream_vector.py also runs the
vector env against the single env on the shipped reacher bundle.

Elementwise kernels (SiLU, GELU) run in SIMD chunks of 32 floats with a scalar
tail that rounds differently, so a row must be a whole number of chunks: the
backbone's width must be a multiple of 32 (``BackboneConfig`` says so).
"""

from collections.abc import Callable

import torch
from torch import nn

MIN_ROWS = 16
IMAGE_CHUNK = 2  # even: at 2 threads each thread takes whole images


def pad_rows(x: torch.Tensor, rows: int = MIN_ROWS) -> torch.Tensor:
    """``x`` with zero rows appended along dim 0 up to ``rows`` (unchanged if it has that many)."""
    missing = rows - x.shape[0]
    if missing <= 0:
        return x
    return torch.cat([x, x.new_zeros(missing, *x.shape[1:])])


def in_fixed_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int = IMAGE_CHUNK) -> torch.Tensor:
    """``fn(x)`` computed ``size`` rows at a time (the last chunk zero-padded), so every row
    sees the same kernels whatever the batch."""
    rows = x.shape[0]
    padded = pad_rows(x, -(-rows // size) * size)
    return torch.cat([fn(chunk) for chunk in padded.split(size)])[:rows]


class BatchInvariantLinear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) whose result for one row never
    depends on how many other rows came with it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        out = super().forward(pad_rows(flat))[: flat.shape[0]]
        return out.reshape(*lead, out.shape[-1])
