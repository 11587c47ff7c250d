"""Block-causal self-attention over frames of tokens, with temporal rotary
embeddings and an optional KV cache.

Frames are blocks: a token attends to every token of its own frame and of
earlier frames (full within a frame, causal across frames). The same code runs
a training window in one pass and a dream one frame at a time against the
cache; the two agree to float tolerance (tests/test_backbone.py).
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from worldenv.memory import KVCache


def rotary(x: torch.Tensor, positions: torch.Tensor, rotary_dims: int, base: float = 100.0) -> torch.Tensor:
    """Rotate the first ``rotary_dims`` channels of ``x`` (B, tokens, heads, head_dim)
    by temporal positions (B, tokens) (RoPE, Su et al. 2021). A small base suits
    positions that stay below a few dozen frames."""
    half = rotary_dims // 2
    frequencies = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = positions.float()[..., None] * frequencies  # (B, tokens, half)
    cos, sin = angles.cos()[:, :, None, :].to(x.dtype), angles.sin()[:, :, None, :].to(x.dtype)
    x1, x2, rest = x[..., :half], x[..., half:rotary_dims], x[..., rotary_dims:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)


class FrameAttention(nn.Module):
    def __init__(self, width: int, heads: int, rotary_fraction: float = 0.5):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads, self.head_dim = heads, width // heads
        self.rotary_dims = 2 * int(self.head_dim * rotary_fraction / 2)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(
        self,
        x: torch.Tensor,
        layer: int,
        layout: "Layout",
        cache: KVCache | None = None,
        write_slots: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, T, N, width) for T frames of N tokens, placed by ``layout``. With a
        cache the frames follow the cached ones; their keys are written into
        ``write_slots`` (B, T) if given, after attending."""
        B, T, N, width = x.shape
        q, k, v = self.qkv(x.reshape(B, T * N, width)).view(B, T * N, 3, self.heads, self.head_dim).unbind(2)
        q = rotary(q, layout.query_positions, self.rotary_dims)
        if cache is None:
            keys, values = rotary(k, layout.key_positions, self.rotary_dims), v
        else:
            cached = cache.keys.shape[2]  # the cache's tokens come first among the keys
            new_keys = rotary(k.to(cache.keys.dtype).to(q.dtype), layout.key_positions[:, cached:], self.rotary_dims)
            keys, values = cache.context(layer, lambda stored: rotary(stored, layout.key_positions[:, :cached], self.rotary_dims),
                                         new_keys, v.to(cache.values.dtype).to(q.dtype))
            if write_slots is not None:
                # After reading: a slot being overwritten (the oldest window frame) is
                # still part of this pass's context, as in the passes that denoised it.
                cache.write(layer, k, v, write_slots)
        attended = F.scaled_dot_product_attention(
            q.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2), attn_mask=layout.bias(q.dtype)
        )  # (B, heads, T*N, head_dim)
        return self.out(attended.transpose(1, 2).reshape(B, T, N, width))


@dataclass
class Layout:
    """Where a pass's tokens sit in time and what they may attend to; the same for
    every layer, so computed once per pass."""

    query_positions: torch.Tensor  # (B, T*N) temporal position of each query token
    key_positions: torch.Tensor  # (B, keys)
    mask: torch.Tensor  # (B, 1, T*N, keys) bool: True where attention is allowed
    _bias: torch.Tensor | None = field(default=None, repr=False)

    def bias(self, dtype: torch.dtype) -> torch.Tensor:
        """The mask as an additive attention bias (0 where allowed, -inf elsewhere), made
        once per pass: SDPA would otherwise convert a boolean mask in every layer."""
        if self._bias is None or self._bias.dtype != dtype:
            self._bias = torch.zeros(self.mask.shape, dtype=dtype, device=self.mask.device).masked_fill_(~self.mask, -torch.inf)
        return self._bias


def layout(batch: int, frames: int, tokens: int, cache: KVCache | None, device, valid: torch.Tensor | None = None) -> Layout:
    """Block-causal layout of ``frames`` new frames, alone or after the cached ones.
    ``valid`` (B, frames) marks missing frames of a training sequence: nothing attends
    to them but themselves, and positions are ranks among the present frames, as the
    cache ranks the frames it holds."""
    frame_of_token = torch.arange(frames, device=device).repeat_interleave(tokens)  # (T*N,)
    own = frame_of_token[:, None] >= frame_of_token[None, :]  # (T*N, T*N) block-causal
    if cache is None:
        if valid is None:
            positions = frame_of_token.expand(batch, -1)
            return Layout(positions, positions, own.expand(batch, 1, -1, -1))
        rank = (valid.long().cumsum(1) - 1).clamp_min(0)  # (B, T)
        positions = rank.repeat_interleave(tokens, dim=1)
        same = frame_of_token[:, None] == frame_of_token[None, :]
        present = valid.repeat_interleave(tokens, dim=1)[:, None, :]  # (B, 1, T*N) keys
        return Layout(positions, positions, ((own & present) | same)[:, None])
    slot_positions, cached_frames = cache.positions()
    positions = cached_frames[:, None] + frame_of_token  # (B, T*N)
    n = cache.shape.tokens_per_frame
    key_positions = torch.cat([slot_positions.repeat_interleave(n, dim=1), positions], dim=1)
    cached = cache.valid.repeat_interleave(n, dim=1)[:, None, :].expand(-1, frames * tokens, -1)
    mask = torch.cat([cached, own.expand(batch, -1, -1)], dim=2)[:, None]  # (B, 1, T*N, cached + T*N)
    return Layout(positions, key_positions, mask)
