"""The KV cache of the block-causal backbone: preallocated, a few *sink* frames
kept forever plus a rolling window of the most recent frames, reset per env by mask.

Keys are stored without their temporal rotary embedding. At attention time each
cached frame gets the position of its rank among the env's cached frames (sinks
first, then the window, oldest first) and the new frame the next position, so a
dream of any length sees the same relative positions as a training window of
``sink_frames + window_frames + 1`` frames ("KV-cache-relative RoPE", as in the
Self-Forcing / FlashDreams rolling caches). Everything is tensor arithmetic on
per-env counters: no host sync, no Python loop over envs.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CacheShape:
    layers: int
    heads: int
    head_dim: int
    tokens_per_frame: int
    sink_frames: int
    window_frames: int
    latent_channels: int

    @property
    def slots(self) -> int:
        return self.sink_frames + self.window_frames


class KVCache:
    def __init__(self, shape: CacheShape, batch: int, device: torch.device | str, dtype: torch.dtype):
        if shape.window_frames < 1:
            raise ValueError(f"window_frames must be >= 1, got {shape.window_frames}")
        self.shape, self.batch = shape, batch
        tokens = shape.slots * shape.tokens_per_frame
        # (layers, B, slot tokens, heads, head_dim): rows are envs, so per-env writes are one index_put.
        self.keys = torch.zeros(shape.layers, batch, tokens, shape.heads, shape.head_dim, device=device, dtype=dtype)
        self.values = torch.zeros_like(self.keys)
        self.slot_frame = torch.full((batch, shape.slots), -1, device=device, dtype=torch.long)  # frame number or -1
        self.frames_seen = torch.zeros(batch, device=device, dtype=torch.long)  # per env, ever committed
        # The newest committed frame's latent: the next frame's "previous frame" input.
        self.last_latent = torch.zeros(batch, shape.tokens_per_frame, shape.latent_channels, device=device, dtype=dtype)

    # ---- bookkeeping --------------------------------------------------------------
    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Forget everything of the envs where ``mask`` (B,) is True (all if None)."""
        if mask is None:
            self.slot_frame.fill_(-1)
            self.frames_seen.zero_()
            self.last_latent.zero_()
            return
        self.slot_frame.masked_fill_(mask[:, None], -1)
        self.frames_seen.masked_fill_(mask, 0)
        self.last_latent.masked_fill_(mask[:, None, None], 0.0)

    @property
    def valid(self) -> torch.Tensor:
        """(B, slots) bool: which slots hold a frame."""
        return self.slot_frame >= 0

    def positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Temporal positions: of each slot (B, slots), as its rank among the env's
        cached frames, and of the next frame (B,), the number of cached frames."""
        frames = self.slot_frame
        valid = self.valid
        earlier = (frames[:, None, :] < frames[:, :, None]) & valid[:, None, :]  # (B, slot, other slot)
        return earlier.sum(-1), valid.sum(-1)

    def slots_for(self, count: int) -> torch.Tensor:
        """(B, count) slot index of each env's next ``count`` frames."""
        s = self.shape
        if count > s.window_frames:
            raise ValueError(f"cannot commit {count} frames at once into a window of {s.window_frames}")
        frame = self.frames_seen[:, None] + torch.arange(count, device=self.frames_seen.device)
        rolling = s.sink_frames + (frame - s.sink_frames).remainder(s.window_frames)
        return torch.where(frame < s.sink_frames, frame, rolling)

    def token_index(self, slots: torch.Tensor) -> torch.Tensor:
        """(B, count) slots -> (B, count * tokens_per_frame) token rows in the cache."""
        n = self.shape.tokens_per_frame
        return (slots[..., None] * n + torch.arange(n, device=slots.device)).flatten(1)

    # ---- data ---------------------------------------------------------------------
    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor, slots: torch.Tensor) -> None:
        """Store one layer's keys/values (B, count * tokens, heads, head_dim) in ``slots`` (B, count)."""
        rows = torch.arange(self.batch, device=slots.device)[:, None]
        index = self.token_index(slots)
        self.keys[layer][rows, index] = keys.to(self.keys.dtype)
        self.values[layer][rows, index] = values.to(self.values.dtype)

    def advance(self, slots: torch.Tensor, last_latent: torch.Tensor) -> None:
        """Mark ``slots`` (B, count) as holding the next ``count`` frames of each env,
        the newest of which has latent ``last_latent`` (B, N, C)."""
        count = slots.shape[1]
        self.last_latent.copy_(last_latent)
        frame = self.frames_seen[:, None] + torch.arange(count, device=slots.device)
        self.slot_frame.scatter_(1, slots, frame)
        self.frames_seen += count

    def replace_rows(self, rows: torch.Tensor, other: "KVCache") -> None:
        """Copy all of ``other`` (a cache of ``len(rows)`` envs) into the envs ``rows``."""
        self.keys[:, rows] = other.keys
        self.values[:, rows] = other.values
        self.slot_frame[rows] = other.slot_frame
        self.frames_seen[rows] = other.frames_seen
        self.last_latent[rows] = other.last_latent
