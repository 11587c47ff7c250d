"""The KV cache of the block-causal backbone: preallocated, a few *sink* frames
kept forever, a rolling window of the most recent frames, and optionally a
long-term *memory* of earlier frames chosen for coverage; reset per env by mask.

Slots are laid out ``[sinks | memory | window]``. A frame that leaves the window
is not lost when the cache has memory slots: it moves into memory (its keys and
values as they were computed, no recomputation), and when memory is full one
frame of the most similar pair is dropped, the more redundant one
(``memory_slot_for``). Views seen once stay until frames that show the same
thing crowd them out, so a scene that the
camera turns away from and back to is still in memory hundreds of frames later,
at a cost per step that never grows: the new frame always attends to
``sinks + memory + window`` frames.

Keys are stored without their temporal rotary embedding. At attention time each
cached frame sits at the distance its rank among the env's cached frames (sinks
first, then memory, then the window, oldest first) gives from the new frame, so a
dream of any length sees the same relative positions as a training sequence of
``sinks + memory + window + 1`` frames ("KV-cache-relative RoPE", as in the
Self-Forcing / FlashDreams rolling caches). The positions are counted so that the
new frame's is its frame number: a window frame then keeps one position for as long
as it is cached, and only sinks and memory move. Everything is tensor arithmetic on
per-env counters: no host sync, no Python loop over envs.
"""

from collections.abc import Callable
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
    memory_frames: int = 0
    action_dim: int = 0
    past_actions: int = 0  # actions kept from before the next frame (the backbone's action_history - 1)

    @property
    def slots(self) -> int:
        return self.sink_frames + self.memory_frames + self.window_frames

    @property
    def summary_dim(self) -> int:
        """Length of the per-frame summary that memory compares frames by (0 without memory)."""
        return self.tokens_per_frame * self.latent_channels if self.memory_frames else 0


TIE = 1e-3  # cosine similarities this close count as equal (a still camera's frames)


def frame_summary(latent: torch.Tensor) -> torch.Tensor:
    """(..., N, C) latent -> (..., N * C) unit vector (mean removed): frames showing the
    same thing from the same place have summaries with cosine near 1."""
    flat = latent.flatten(-2).float()
    flat = flat - flat.mean(-1, keepdim=True)
    return flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def memory_slot_for(summaries: torch.Tensor, frames: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Where a frame leaving the window goes: (B,) memory slot in [0, M), or -1 to let it go.

    summaries: (B, M, D) of the frames in memory, frames: (B, M) their frame numbers
    (-1: empty), candidate: (B, D) summary of the leaving frame, always the newest.
    An empty slot if there is one. Otherwise one of the most similar pair among memory
    and the candidate goes: the one more similar to the rest (the more redundant view),
    or on a tie (within ``TIE``) the older one. Over a turn this keeps the views at the
    ends and spreads the others, and a view seen again is kept at its latest sighting.
    """
    empty = frames < 0
    first_empty = empty.float().argmax(1)
    items = torch.cat([summaries, candidate[:, None]], dim=1)  # (B, M + 1, D)
    similarity = items @ items.transpose(1, 2)
    M = frames.shape[1]
    similarity.diagonal(dim1=1, dim2=2).fill_(-torch.inf)
    pair = similarity.flatten(1).argmax(1)
    i, j = (pair // (M + 1))[:, None], (pair % (M + 1))[:, None]
    # How redundant each of the pair is: its similarity to its nearest item other than the partner.
    def redundancy(row: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        similarities = similarity.gather(1, row[:, :, None].expand(-1, -1, M + 1))  # (B, 1, M + 1)
        return similarities.scatter(2, partner[:, :, None], -torch.inf).amax(-1)  # (B, 1)

    redundancy_i, redundancy_j = redundancy(i, j), redundancy(j, i)
    numbers = torch.cat([frames, torch.full_like(frames[:, :1], torch.iinfo(frames.dtype).max)], dim=1)
    older = torch.where(numbers.gather(1, i) < numbers.gather(1, j), i, j)
    redundant = torch.where(redundancy_i > redundancy_j, i, j)
    tie = (redundancy_i == redundancy_j) | ((redundancy_i - redundancy_j).abs() <= TIE)  # == also for -inf (M = 1)
    drop = torch.where(tie, older, redundant)[:, 0]
    slot = torch.where(drop == M, -1, drop)  # index M is the candidate itself
    return torch.where(empty.any(1), first_empty, slot)


def remember(frames: torch.Tensor, summaries: torch.Tensor, leaving: torch.Tensor, frame: torch.Tensor,
             candidate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``memory_slot_for`` in place to memory ``frames`` (B, M) and ``summaries``
    (B, M, D) for the envs where ``leaving`` (B,): frame number ``frame`` (B,) with
    summary ``candidate`` (B, D) leaves the window. Returns the slot (B,) and whether it
    was kept there (B,); the cache and the training schedule share this one rule."""
    rows = torch.arange(frames.shape[0], device=frames.device)
    slot = memory_slot_for(summaries, frames, candidate)
    kept = leaving & (slot >= 0)  # -1: the leaving frame is the one let go
    slot = slot.clamp_min(0)
    frames[rows, slot] = torch.where(kept, frame, frames[rows, slot])
    summaries[rows, slot] = torch.where(kept[:, None], candidate, summaries[rows, slot])
    return slot, kept


class KVCache:
    def __init__(self, shape: CacheShape, batch: int, device: torch.device | str, dtype: torch.dtype):
        if shape.window_frames < 1:
            raise ValueError(f"window_frames must be >= 1, got {shape.window_frames}")
        if shape.memory_frames < 0 or shape.sink_frames < 0:
            raise ValueError(f"sink_frames and memory_frames must be >= 0, got {shape.sink_frames}, {shape.memory_frames}")
        self.shape, self.batch = shape, batch
        tokens = shape.slots * shape.tokens_per_frame
        # (layers, B, heads, slot tokens, head_dim): rows are envs, so per-env writes are one
        # index_put; head-major, the layout attention reads, so a pass's context is a plain copy.
        self.keys = torch.zeros(shape.layers, batch, shape.heads, tokens, shape.head_dim, device=device, dtype=dtype)
        self.values = torch.zeros_like(self.keys)
        self.slot_frame = torch.full((batch, shape.slots), -1, device=device, dtype=torch.long)  # frame number or -1
        self.frames_seen = torch.zeros(batch, device=device, dtype=torch.long)  # per env, ever committed
        # The newest committed frame's latent: the next frame's "previous frame" input.
        self.last_latent = torch.zeros(batch, shape.tokens_per_frame, shape.latent_channels, device=device, dtype=dtype)
        self.summary = torch.zeros(batch, shape.slots, shape.summary_dim, device=device)  # what memory compares
        # The newest committed frames' actions, oldest first: part of the next frame's condition.
        self.recent_actions = torch.zeros(batch, shape.past_actions, shape.action_dim, device=device, dtype=dtype)
        # Moves of frames leaving the window into memory, planned by ``plan_commit`` and
        # carried out layer by layer in ``write`` (after that layer has read the cache).
        self._moves: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._planned_memory: tuple[torch.Tensor, torch.Tensor] | None = None
        # The commit's token range where every env writes one frame into the same slot
        # (envs in step), planned with the moves: ``write`` then copies a slice, 4x faster
        # than indexing per env.
        self._shared_tokens: slice | None = None
        # Per layer: ``context``'s buffers, kept for the cache's life (allocating them anew each
        # frame cost a tenth of a bfloat16 dream step at batch 64 in page faults), and how many
        # leading slots of them no longer hold the cache as it is (a layer not listed: all).
        self._contexts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._stale_slots: dict[int, int] = {}

    # ---- bookkeeping --------------------------------------------------------------
    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Forget everything of the envs where ``mask`` (B,) is True (all if None)."""
        self._stale_slots.clear()
        if mask is None:
            self.slot_frame.fill_(-1)
            self.frames_seen.zero_()
            self.last_latent.zero_()
            self.recent_actions.zero_()
            return
        self.slot_frame.masked_fill_(mask[:, None], -1)
        self.frames_seen.masked_fill_(mask, 0)
        self.last_latent.masked_fill_(mask[:, None, None], 0.0)
        self.recent_actions.masked_fill_(mask[:, None, None], 0.0)

    def set_past_actions(self, past: torch.Tensor) -> None:
        """Before anything is committed: the actions that preceded the first frame to come,
        (B, P, A) oldest first; the last ``past_actions`` of them are kept (zeros in front
        when P is smaller, as at an episode's start)."""
        B, _, A = self.recent_actions.shape
        if past.ndim != 3 or past.shape[0] != B or past.shape[2] != A:
            raise ValueError(f"past_actions: expected shape ({B}, P, {A}), got {tuple(past.shape)}")
        kept = min(past.shape[1], self.shape.past_actions)
        if kept:
            self.recent_actions[:, -kept:] = past[:, -kept:].to(self.recent_actions.dtype)

    @property
    def valid(self) -> torch.Tensor:
        """(B, slots) bool: which slots hold a frame."""
        return self.slot_frame >= 0

    def positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Temporal positions: of each slot (B, slots) and of the next frame (B,). The next
        frame's is its frame number; a slot's is as far before it as the slot's rank among
        the env's cached frames is from their count (a window frame's: its frame number)."""
        frames = self.slot_frame
        valid = self.valid
        earlier = (frames[:, None, :] < frames[:, :, None]) & valid[:, None, :]  # (B, slot, other slot)
        shift = self.frames_seen - valid.sum(-1)  # frames no longer cached
        return earlier.sum(-1) + shift[:, None], self.frames_seen.clone()

    def slots_for(self, count: int) -> torch.Tensor:
        """(B, count) slot index of each env's next ``count`` frames."""
        s = self.shape
        if count > s.window_frames:
            raise ValueError(f"cannot commit {count} frames at once into a window of {s.window_frames}")
        frame = self.frames_seen[:, None] + torch.arange(count, device=self.frames_seen.device)
        rolling = s.sink_frames + s.memory_frames + (frame - s.sink_frames).remainder(s.window_frames)
        return torch.where(frame < s.sink_frames, frame, rolling)

    def token_index(self, slots: torch.Tensor) -> torch.Tensor:
        """(B, count) slots -> (B, count * tokens_per_frame) token rows in the cache."""
        n = self.shape.tokens_per_frame
        return (slots[..., None] * n + torch.arange(n, device=slots.device)).flatten(1)

    def plan_commit(self, slots: torch.Tensor) -> None:
        """Before committing into ``slots`` (B, count): decide where in memory each frame
        about to be overwritten goes. The moves happen in ``write`` and the bookkeeping
        in ``advance``, so the commit's own pass reads the cache as the passes that
        denoised its frames did."""
        s = self.shape
        self._moves = []
        self._shared_tokens = None
        if slots.device.type == "cpu" and slots.shape[1] == 1 and bool((slots == slots[0]).all()):  # no host wait on a GPU
            first = int(slots[0, 0]) * s.tokens_per_frame
            self._shared_tokens = slice(first, first + s.tokens_per_frame)
        if not s.memory_frames:
            return
        memory = slice(s.sink_frames, s.sink_frames + s.memory_frames)
        frames, summaries = self.slot_frame[:, memory].clone(), self.summary[:, memory].clone()
        rows = torch.arange(self.batch, device=slots.device)
        for k in range(slots.shape[1]):  # oldest first; at most a window's worth
            source = slots[:, k]
            leaving = self.slot_frame[rows, source] >= 0
            leaving &= source >= memory.stop  # a window slot (sinks never leave)
            slot, kept = remember(frames, summaries, leaving, self.slot_frame[rows, source], self.summary[rows, source])
            self._moves.append((source, memory.start + slot, kept))
        self._planned_memory = (frames, summaries)

    # ---- data ---------------------------------------------------------------------
    def context(self, layer: int, rotate: Callable[[torch.Tensor, slice], torch.Tensor], new_keys: torch.Tensor,
                new_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``layer``'s cached keys, positioned by ``rotate`` (keys of the slots ``slice``
        -> the same, rotated), then ``new_keys``; its cached values, then ``new_values`` (all
        B, heads, tokens, head_dim, in the new ones' dtype): the keys and values a pass
        attends to. Without gradients they live in a buffer kept up to date: ``write``
        puts a new frame's rotated keys there too, and a window frame's position never
        changes (``positions``), so per frame only the sinks and memory are rotated and
        copied anew, and each pass writes its own tokens after them."""
        dtype, cached = new_keys.dtype, self.keys.shape[3]
        if torch.is_grad_enabled():
            return (torch.cat([rotate(self.keys[layer].to(dtype), slice(0, self.shape.slots)), new_keys], dim=2),
                    torch.cat([self.values[layer].to(dtype), new_values], dim=2))
        batch, heads, tokens, head_dim = new_keys.shape
        keys, values = self._contexts.get(layer, (None, None))
        if keys is None or keys.shape[2] != cached + tokens or keys.dtype != dtype:
            keys = new_keys.new_empty(batch, heads, cached + tokens, head_dim)
            values = torch.empty_like(keys)
            self._contexts[layer] = keys, values
            self._stale_slots.pop(layer, None)
        stale = self._stale_slots.get(layer, self.shape.slots)
        if stale:
            part = slice(0, stale * self.shape.tokens_per_frame)
            keys[:, :, part] = rotate(self.keys[layer][:, :, part].to(dtype), slice(0, stale))
            values[:, :, part] = self.values[layer][:, :, part]
            self._stale_slots[layer] = 0
        keys[:, :, cached:], values[:, :, cached:] = new_keys, new_values
        return keys, values

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor, slots: torch.Tensor,
              rotated_keys: torch.Tensor) -> None:
        """Store one layer's keys/values (B, heads, count * tokens, head_dim) in ``slots`` (B, count),
        the slots ``plan_commit`` was given, first moving the frames they overwrite into
        memory as planned; ``rotated_keys``, the keys at their frames' positions in the dtype
        ``context`` gave, go to its buffer. Call it after the layer has attended: the
        overwritten slot is part of that pass's context."""
        rows = torch.arange(self.batch, device=slots.device)[:, None]
        stores = [store.transpose(1, 2) for store in (self.keys[layer], self.values[layer])]  # token-major views
        for source, destination, leaving in self._moves:
            src, dst = self.token_index(source[:, None]), self.token_index(destination[:, None])
            keep = leaving[:, None, None, None]
            for store in stores:
                store[rows, dst] = torch.where(keep, store[rows, src], store[rows, dst])
        buffers = self._contexts.get(layer)
        if buffers is not None and torch.is_grad_enabled():  # a buffer never joins a graph
            self._stale_slots.pop(layer, None)
            buffers = None
        targets = [self.keys[layer], self.values[layer]] + list(buffers or ())
        news = [keys, values] + ([rotated_keys, values] if buffers else [])
        if self._shared_tokens is not None:
            for target, new in zip(targets, news):
                target[:, :, self._shared_tokens] = new
            return
        index = self.token_index(slots)
        for target, new in zip(targets, news):
            target.transpose(1, 2)[rows, index] = new.transpose(1, 2).to(target.dtype)

    def advance(self, slots: torch.Tensor, latents: torch.Tensor, actions: torch.Tensor) -> None:
        """Mark ``slots`` (B, count) as holding the next ``count`` frames of each env, whose
        latents are ``latents`` (B, count, N, C) and actions ``actions`` (B, count, A), and
        the planned moves as done."""
        s = self.shape
        moving = s.sink_frames + s.memory_frames  # positions change; memory may have new frames
        for layer, stale in self._stale_slots.items():
            self._stale_slots[layer] = max(stale, moving)
        count = slots.shape[1]
        if self._moves:
            memory = slice(s.sink_frames, s.sink_frames + s.memory_frames)
            self.slot_frame[:, memory], self.summary[:, memory] = self._planned_memory
            self._moves = []
        self.last_latent.copy_(latents[:, -1])
        if s.past_actions:
            history = torch.cat([self.recent_actions, actions.to(self.recent_actions.dtype)], dim=1)
            self.recent_actions.copy_(history[:, -s.past_actions:])
        frame = self.frames_seen[:, None] + torch.arange(count, device=slots.device)
        self.slot_frame.scatter_(1, slots, frame)
        if s.memory_frames:
            rows = torch.arange(self.batch, device=slots.device)[:, None]
            self.summary[rows, slots] = frame_summary(latents)
        self.frames_seen += count

    def replace_rows(self, rows: torch.Tensor, other: "KVCache") -> None:
        """Copy all of ``other`` (a cache of ``len(rows)`` envs) into the envs ``rows``."""
        self._stale_slots.clear()
        self.keys[:, rows] = other.keys
        self.values[:, rows] = other.values
        self.slot_frame[rows] = other.slot_frame
        self.frames_seen[rows] = other.frames_seen
        self.last_latent[rows] = other.last_latent
        self.summary[rows] = other.summary
        self.recent_actions[rows] = other.recent_actions
