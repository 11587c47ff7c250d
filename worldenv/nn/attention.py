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

from worldenv.memory import REFERENCE, CommitPlan, FastPaths, KVCache


def rotations(frame_positions: torch.Tensor, head_dim: int, rotary_dims: int, base: float = 100.0) -> torch.Tensor:
    """Rotary position embedding (RoPE, Su et al. 2021) as matrices: (B, F) temporal
    positions -> (B, F, head_dim, head_dim) float32 R, so that ``x @ R`` rotates the
    first ``rotary_dims`` channels of a head vector x (pairs i and i + rotary_dims / 2)
    by its frame's position and leaves the rest. Attention sees only the distances between
    positions, which stay below a few dozen frames: a small base suits them."""
    half = rotary_dims // 2
    frequencies = base ** (-torch.arange(half, device=frame_positions.device, dtype=torch.float32) / half)
    # In float64: a dream's positions are frame numbers, thousands after a long rollout.
    angles = frame_positions.double()[..., None] * frequencies.double()  # (B, F, half)
    cos, sin = angles.cos().float(), angles.sin().float()
    matrix = torch.zeros(*frame_positions.shape, head_dim, head_dim, device=frame_positions.device)
    first, rest = torch.arange(half, device=matrix.device), torch.arange(rotary_dims, head_dim, device=matrix.device)
    second = first + half
    matrix[..., first, first], matrix[..., second, second] = cos, cos
    matrix[..., first, second], matrix[..., second, first] = sin, -sin
    matrix[..., rest, rest] = 1.0
    return matrix


def rotary(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, heads, F * N, head_dim), F frames of N tokens, by each frame's
    ``rotation`` (B, F, head_dim, head_dim), in x's dtype: one batched product, where the
    elementwise form (slices, sin/cos broadcasts, a concatenation) cost 4x as much."""
    B, heads, tokens, head_dim = x.shape
    frames = rotation.shape[1]
    return (x.reshape(B, heads, frames, tokens // frames, head_dim) @ rotation[:, None]).reshape(x.shape)


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
        plan: CommitPlan | None = None,
        fast: FastPaths = REFERENCE,
    ) -> torch.Tensor:
        """x: (B, T, N, width) for T frames of N tokens, placed by ``layout``. With a
        cache the frames follow the cached ones; with a ``plan`` their keys and values are
        written into the cache as it says, after attending. ``fast``: the shortcuts the
        caller allows the cache."""
        B, T, N, width = x.shape
        # Head-major (B, heads, T*N, head_dim), as the cache stores keys and the attention
        # kernel reads them fastest.
        q, k, v = self.qkv(x.reshape(B, T * N, width)).view(B, T * N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        key_rotation = layout.key_rotation(self.head_dim, self.rotary_dims, q.dtype)
        q = rotary(q, key_rotation[:, -T:])  # a pass's queries are its own frames, the last keys
        if cache is None:
            keys, values = rotary(k, key_rotation), v
        else:
            slots = cache.keys.shape[3] // N  # the cache's frames come first among the keys
            new_keys = rotary(k.to(cache.keys.dtype).to(q.dtype), key_rotation[:, slots:])
            keys, values = cache.context(
                layer,
                lambda stored, part: rotary(stored, key_rotation[:, part]),
                new_keys,
                v.to(cache.values.dtype).to(q.dtype),
                fast,
            )
        # No mask where every key may be attended (``FastPaths.unmasked_when_full``): the CPU
        # kernel gives the same bits faster.
        attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=layout.bias(q.dtype))  # (B, heads, T*N, head_dim)
        if cache is not None and plan is not None:
            # After attending: a slot being overwritten (the oldest window frame) is still
            # part of this pass's context, as in the passes that denoised it.
            cache.write(layer, k, v, plan, new_keys, fast)
        return self.out(attended.transpose(1, 2).reshape(B, T, N, width))


@dataclass
class Layout:
    """Where a pass's frames sit in time and what they may attend to; the same for
    every layer, so computed once per pass."""

    key_frame_positions: torch.Tensor  # (B, frames): temporal position of each key frame; the pass's own frames are the last
    mask: torch.Tensor | None  # (B, 1, queries, keys) bool: True where attention is allowed; None: everywhere
    _bias: torch.Tensor | None = field(default=None, repr=False)
    _rotation: torch.Tensor | None = field(default=None, repr=False)

    def bias(self, dtype: torch.dtype) -> torch.Tensor | None:
        """The mask as an additive attention bias (0 where allowed, -inf elsewhere), made
        once per pass: SDPA would otherwise convert a boolean mask in every layer. None
        without a mask: a zero bias would give the same bits, more slowly."""
        if self.mask is None:
            return None
        if self._bias is None or self._bias.dtype != dtype:
            self._bias = torch.zeros(self.mask.shape, dtype=dtype, device=self.mask.device).masked_fill_(~self.mask, -torch.inf)
        return self._bias

    def key_rotation(self, head_dim: int, rotary_dims: int, dtype: torch.dtype) -> torch.Tensor:
        """(B, frames, head_dim, head_dim) rotary matrices of the key frames, made once per pass."""
        if self._rotation is None or self._rotation.dtype != dtype:
            self._rotation = rotations(self.key_frame_positions, head_dim, rotary_dims).to(dtype)
        return self._rotation


def layout(
    batch: int,
    frames: int,
    tokens: int,
    cache: KVCache | None,
    device,
    valid: torch.Tensor | None = None,
    unmasked_when_full: bool = False,
) -> Layout:
    """Block-causal layout of ``frames`` new frames, alone or after the cached ones.
    ``valid`` (B, frames) marks missing frames of a training sequence: nothing attends
    to them but themselves, and positions are ranks among the present frames, as the
    cache ranks the frames it holds. ``unmasked_when_full``: check on the host whether
    a one-frame pass meets a full cache, and then leave the mask out (``FastPaths``)."""
    frame_of_token = torch.arange(frames, device=device).repeat_interleave(tokens)  # (T*N,)
    own = frame_of_token[:, None] >= frame_of_token[None, :]  # (T*N, T*N) block-causal
    if cache is None:
        if valid is None:
            return Layout(torch.arange(frames, device=device).expand(batch, -1), own.expand(batch, 1, -1, -1))
        rank = (valid.long().cumsum(1) - 1).clamp_min(0)  # (B, T)
        same = frame_of_token[:, None] == frame_of_token[None, :]
        present = valid.repeat_interleave(tokens, dim=1)[:, None, :]  # (B, 1, T*N) keys
        return Layout(rank, ((own & present) | same)[:, None])
    slot_positions, cached_frames = cache.positions()
    positions = cached_frames[:, None] + torch.arange(frames, device=device)  # (B, T)
    key_positions = torch.cat([slot_positions, positions], dim=1)
    if unmasked_when_full and frames == 1 and bool(cache.valid.all()):
        # A dream step once its cache is full: every key may be attended, no mask.
        return Layout(key_positions, None)
    n = cache.shape.tokens_per_frame
    cached = cache.valid.repeat_interleave(n, dim=1)[:, None, :].expand(-1, frames * tokens, -1)
    mask = torch.cat([cached, own.expand(batch, -1, -1)], dim=2)[:, None]  # (B, 1, T*N, cached + T*N)
    return Layout(key_positions, mask)
