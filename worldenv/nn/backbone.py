"""The teacher's network: a block-causal transformer over latent tokens,
conditioned per frame on its noise level and on the action that led to it.

``forward(x_t, t, actions, cache)`` predicts the flow-matching velocity of every
frame (diffusion forcing: each frame carries its own ``t``; each token also gets
the same token of the previous frame as input), plus reward and
termination of each frame from the heads. With a cache the frames follow the
cached context and the cache is only read; ``commit`` runs the same layers and
writes the frames' keys and values into it, as a ``CommitPlan`` of the retention rule
says (``worldenv/memory/``), and advances the dreams' ``DreamState``.
"""

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from worldenv.memory import REFERENCE, CacheShape, DreamState, FastPaths, KVCache
from worldenv.nn.action_flow import ActionFlow
from worldenv.nn.attention import FrameAttention, Layout, layout
from worldenv.nn.batch_invariant import BatchInvariantLinear


@dataclass
class BackboneConfig:
    latent_channels: int = 16
    grid: int = 8  # latent tokens per side of a frame
    action_dim: int = 2
    width: int = 192  # a multiple of 32 keeps dreams batch-invariant on CPU (nn/batch_invariant.py)
    depth: int = 6
    heads: int = 6
    mlp_ratio: float = 4.0
    sink_frames: int = 1  # KV cache: frames kept from the start of a dream
    window_frames: int = 7  # KV cache: most recent frames kept
    memory_frames: int = 0  # KV cache: earlier frames kept for coverage (long-term memory, memory.py)
    rewards: int = 1  # reward head outputs: one per agent of the scene
    # Actions each frame is conditioned on: its own and the ones before it. A push shows
    # in the next frame by a fraction of a pixel (a reacher's arm from rest) and in later
    # frames through the velocity it gave; with the recent pushes in its condition, a
    # frame need not infer that velocity from sub-pixel motion in the context.
    action_history: int = 1
    # A per-token input linear in the action and in the previous frame's local
    # neighbourhood (nn/action_flow.py): the first-order picture of how an action moves
    # what is on screen, which the adaLN condition alone learns slowly.
    action_flow: bool = False
    # Of the action history, how many (newest first) ActionFlow moves tokens by; 0 for all.
    # The condition can use a long history to infer velocity, while a push older than a
    # few frames no longer moves anything by itself.
    action_flow_history: int = 0
    # ActionFlow's neighbourhood half-width in tokens (1: 3x3). A wider flow fine-tunes
    # from a narrower one's weights (``nn.action_flow.widen``).
    action_flow_reach: int = 1

    @property
    def tokens_per_frame(self) -> int:
        return self.grid * self.grid

    @property
    def context_frames(self) -> int:
        """Consecutive frames of a training window: without memory the sinks, the window
        and the new frame; with memory the sinks are the episode's first frames and the
        memory its earlier ones (``training/memory_schedule.py``), so only the window and
        the new frame."""
        return self.window_frames + 1 + (0 if self.memory_frames else self.sink_frames)


@dataclass
class Segments:
    """A training sequence that is not one run of consecutive frames (sinks and memory
    frames in front of a window): which frames are present, which do not follow the
    frame before them in the sequence, and the clean latent that really preceded each."""

    valid: torch.Tensor  # (B, T) bool: False for a missing sink or memory frame (attended by nothing)
    starts: torch.Tensor  # (B, T) bool: the frame's previous-frame input is ``previous``, not the frame before it
    previous: torch.Tensor  # (B, T, N, C) clean latent of the frame before each (zeros at an episode's start)


@dataclass
class BackboneOutput:
    velocity: torch.Tensor  # (B, T, N, C)
    reward: torch.Tensor  # (B, T, rewards)
    termination_logit: torch.Tensor  # (B, T)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of t in [0, 1] (scaled by 1000, as DiT's integer steps): (...,) -> (..., dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[..., None] * frequencies
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class TanhGELU(nn.Module):
    """GELU with the tanh approximation, as trained; in reduced precision, the exact (erf)
    GELU in its place. The two differ by at most 5e-4, less than half a bfloat16 step for
    every output above 0.05 in magnitude, and the erf kernel runs 4x faster on the CPU
    (the tanh GELU was a tenth of a bfloat16 pass)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh" if x.dtype == torch.float32 else "none")


class Block(nn.Module):
    """Pre-norm transformer block with adaLN-Zero per-frame modulation (DiT, Peebles & Xie 2023)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attention = FrameAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), TanhGELU(), nn.Linear(hidden, width))
        modulation = BatchInvariantLinear(width, 6 * width)
        self.modulation = nn.Sequential(nn.SiLU(), modulation)
        nn.init.zeros_(modulation.weight)  # adaLN-Zero: every block starts as identity
        nn.init.zeros_(modulation.bias)

    def forward(self, x, condition, layer, placement: Layout, cache, plan, fast: FastPaths):
        # condition: (B, T, width), one per frame, broadcast over the frame's N tokens.
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(condition)[:, :, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        x = x + gate1 * self.attention(h, layer, placement, cache, plan, fast)
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.mlp(h)


class Backbone(nn.Module):
    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Linear(c.latent_channels, c.width)
        self.embed_previous = nn.Linear(c.latent_channels, c.width)
        self.spatial_position = nn.Parameter(torch.randn(c.tokens_per_frame, c.width) * 0.02)
        # Per-frame layers (one row per frame, not per token) are batch-invariant: see nn/batch_invariant.py.
        Linear = BatchInvariantLinear
        self.time_embed = nn.Sequential(Linear(c.width, c.width), nn.SiLU(), Linear(c.width, c.width))
        if c.action_history < 1:
            raise ValueError(f"action_history: expected a positive integer, got {c.action_history}")
        if c.action_history > 1 and c.memory_frames:
            raise ValueError(
                "action_history > 1 with long-term memory (memory_frames > 0) is not supported: "
                "a memory frame's past actions are not kept"
            )
        self.action_embed = nn.Sequential(Linear(c.action_history * c.action_dim, c.width), nn.SiLU(), Linear(c.width, c.width))
        if not 0 <= c.action_flow_history <= c.action_history:
            raise ValueError(
                f"action_flow_history: expected 0 (all) to action_history ({c.action_history}), got {c.action_flow_history}"
            )
        self.flow_actions = (c.action_flow_history or c.action_history) * c.action_dim
        self.action_flow = (
            ActionFlow(c.latent_channels, c.grid, self.flow_actions, c.width, c.action_flow_reach) if c.action_flow else None
        )
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.final_norm = nn.LayerNorm(c.width, elementwise_affine=False, eps=1e-6)
        final_modulation = Linear(c.width, 2 * c.width)
        self.final_modulation = nn.Sequential(nn.SiLU(), final_modulation)
        self.velocity = nn.Linear(c.width, c.latent_channels)
        self.heads = nn.Sequential(Linear(2 * c.width, c.width), nn.SiLU(), Linear(c.width, c.rewards + 1))
        for layer in (final_modulation, self.velocity):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def cache_shape(self) -> CacheShape:
        c = self.config
        return CacheShape(
            c.depth,
            c.heads,
            c.width // c.heads,
            c.tokens_per_frame,
            c.sink_frames,
            c.window_frames,
            c.latent_channels,
            c.memory_frames,
        )

    def new_cache(self, batch: int, device, dtype=torch.float32, **slots) -> KVCache:
        """A cache for ``batch`` dreams; ``slots`` (sink_frames, memory_frames, window_frames)
        override the config's, e.g. to measure what each kind of context contributes."""
        return KVCache(replace(self.cache_shape(), **slots), batch, device, dtype)

    def new_state(self, batch: int, device, dtype=torch.float32, past_actions: torch.Tensor | None = None) -> DreamState:
        """The state of ``batch`` fresh dreams (``DreamState.new``); ``past_actions`` (B, P, A),
        oldest first, the actions before the first frame to come (zeros if None)."""
        c = self.config
        return DreamState.new(
            batch, c.tokens_per_frame, c.latent_channels, c.action_dim, c.action_history - 1, device, dtype, past_actions
        )

    def forward(
        self,
        x_t,
        t,
        actions,
        cache: KVCache | None = None,
        state: DreamState | None = None,
        segments: Segments | None = None,
        past_actions: torch.Tensor | None = None,
        fast: FastPaths = REFERENCE,
    ) -> BackboneOutput:
        """x_t: (B, T, N, C) noisy latents; t: (B, T) noise levels; actions: (B, T, A),
        each the action that led to its frame. With a ``cache`` (and the dreams' ``state``,
        which it goes with) the frames follow the cached ones; both are read, never written.
        ``segments`` describes a training sequence of several runs of frames (no cache);
        ``past_actions`` (B, action_history - 1, A), oldest first, the actions before a
        training window (no cache; zeros if None). ``fast``: the shortcuts allowed with a cache."""
        if cache is not None and (segments is not None or past_actions is not None):
            raise ValueError("segments and past_actions describe a training sequence; a pass against a cache takes neither")
        if (cache is None) != (state is None):
            raise ValueError("a pass against a cache takes the dreams' state with it, and a state goes with a cache")
        return self._run(x_t, t, actions, cache, state, None, fast, segments, past_actions)

    def commit(self, x, t, actions, cache: KVCache, state: DreamState, fast: FastPaths = REFERENCE) -> BackboneOutput:
        """Append frames (B, T, N, C) at noise level ``t`` (B, T), usually clean (0) or
        lightly noised, that ``actions`` (B, T, A) led to: their keys and values go into
        ``cache`` as its ``CommitPlan`` says, and ``state`` advances to them. Returns the
        same outputs as ``forward``, computed against the cache as it was before. Under
        gradients the pass joins the graph, but what is committed does not."""
        plan = cache.plan(x, fast)
        out = self._run(x, t, actions, cache, state, plan, fast)
        cache.advance(plan)
        state.advance(x, actions)
        return out

    def _action_history(self, actions: torch.Tensor, state: DreamState | None, past: torch.Tensor | None) -> torch.Tensor:
        """(B, T, A) -> (B, T, action_history * A): each frame's action, then the ones
        before it, newest first; before the sequence, the dreams' recent actions, or
        ``past`` (zeros if None, as at a dream's or an episode's start)."""
        k = self.config.action_history
        if k == 1:
            return actions
        B, T, A = actions.shape
        if state is not None:
            before = state.recent_actions.to(actions.dtype)
        elif past is not None:
            if past.shape != (B, k - 1, A):
                raise ValueError(f"past_actions: expected shape {(B, k - 1, A)}, got {tuple(past.shape)}")
            before = past.to(actions.dtype)
        else:
            before = actions.new_zeros(B, k - 1, A)
        sequence = torch.cat([before, actions], dim=1)  # (B, k - 1 + T, A)
        return torch.cat([sequence[:, k - 1 - lag : k - 1 - lag + T] for lag in range(k)], dim=-1)

    def _run(
        self,
        x,
        t,
        actions,
        cache: KVCache | None,
        state: DreamState | None,
        plan,
        fast: FastPaths,
        segments: Segments | None = None,
        past_actions: torch.Tensor | None = None,
    ) -> BackboneOutput:
        c = self.config
        # Each token also sees the same place in the previous frame (as DIAMOND's frame
        # stacking does): "the next frame is the last one, changed a little" becomes a
        # linear map instead of something attention must first learn. A window's (or a
        # fresh dream's) first frame has none: zeros.
        before = state.last_latent[:, None].to(x.dtype) if state is not None else torch.zeros_like(x[:, :1])
        previous = torch.cat([before, x[:, :-1]], dim=1)
        if segments is not None:
            previous = torch.where(segments.starts[:, :, None, None], segments.previous.to(x.dtype), previous)
        h = self.embed(x) + self.embed_previous(previous) + self.spatial_position  # (B, T, N, width)
        history = self._action_history(actions, state, past_actions)
        if self.action_flow is not None:
            h = h + self.action_flow(previous, history[..., : self.flow_actions])  # newest first
        condition = self.time_embed(timestep_embedding(t, c.width).to(x.dtype)) + self.action_embed(history)
        B, T, N, _ = x.shape
        placement = layout(B, T, N, cache, x.device, None if segments is None else segments.valid, fast.unmasked_when_full)
        for layer, block in enumerate(self.blocks):
            h = block(h, condition, layer, placement, cache, plan, fast)
        shift, scale = self.final_modulation(condition)[:, :, None].chunk(2, dim=-1)
        h = self.final_norm(h) * (1 + scale) + shift
        pooled = torch.cat([h.mean(dim=2), condition], dim=-1)  # (B, T, 2 * width)
        heads = self.heads(pooled)  # (B, T, rewards + 1): the rewards, then the termination logit
        return BackboneOutput(self.velocity(h), heads[..., :-1], heads[..., -1])
