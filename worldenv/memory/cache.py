"""``KVCache``: the backbone's keys and values per slot, and the slot index (which frame
each slot holds, its summary, how many frames each env has committed). It stores what it
is told: where frames go is decided by the retention rule (``retention.py``) in a
``CommitPlan``, and which shortcuts a pass may take by the caller's ``FastPaths``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from worldenv.memory.retention import CacheShape, CommitPlan, plan_commit, slot_positions, token_index


@dataclass(frozen=True)
class FastPaths:
    """Shortcuts that give the reference path's numbers faster (tests/test_memory.py checks
    each against it on the CPU). Each is safe or pays off only under a condition the caller
    knows and the cache does not, so the caller chooses (``for_device``); all off is the
    reference path."""

    # Keep each layer's context (the cached keys, rotated to their positions, and values) in a
    # buffer between passes: a window frame's position never changes, so per pass only the
    # sinks and memory are rotated and copied anew. Only for passes no gradient flows through:
    # the buffer is written in place by the next pass.
    reuse_context: bool = False
    # When every env writes one frame into the same slot, write a slice instead of indexing per
    # env (``CommitPlan.shared_tokens``). Decided on the host: a host wait on an accelerator.
    shared_slot: bool = False
    # When a pass of one frame meets a full cache, attend without a mask (the CPU kernel gives
    # the same bits faster). Decided on the host, as ``shared_slot``.
    unmasked_when_full: bool = False

    @classmethod
    def for_device(cls, device: torch.device | str, gradients: bool = False) -> "FastPaths":
        """Every shortcut that is safe and pays off for passes on ``device``, with or without
        ``gradients`` through them: the host checks on the CPU only."""
        on_host = torch.device(device).type == "cpu"
        return cls(reuse_context=not gradients, shared_slot=on_host, unmasked_when_full=on_host)


REFERENCE = FastPaths()  # no shortcut: the path every other is checked against


class KVCache:
    """Preallocated keys and values of ``batch`` dreams, ``shape.slots`` frames each, laid out
    ``[sinks | memory | window]``; reset per env by mask. Keys are stored without their
    temporal rotary embedding (positions come from ``positions``, "KV-cache-relative RoPE").
    What is written is detached: the cache never joins an autograd graph."""

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
        self.summary = torch.zeros(batch, shape.slots, shape.summary_dim, device=device)  # what memory compares
        # ``FastPaths.reuse_context``'s buffers per layer, kept for the cache's life (allocating
        # them anew each frame cost a tenth of a bfloat16 dream step at batch 64 in page faults),
        # and how many leading slots of them no longer hold the cache as it is (a layer not
        # listed: all). Derived from the tensors above, never read in their place.
        self._contexts: dict[int, tuple[Tensor, Tensor]] = {}
        self._stale_slots: dict[int, int] = {}

    # ---- the slot index -------------------------------------------------------------
    def reset(self, mask: Tensor | None = None) -> None:
        """Forget everything of the envs where ``mask`` (B,) is True (all if None)."""
        self._stale_slots.clear()
        if mask is None:
            self.slot_frame.fill_(-1)
            self.frames_seen.zero_()
            return
        self.slot_frame.masked_fill_(mask[:, None], -1)
        self.frames_seen.masked_fill_(mask, 0)

    @property
    def valid(self) -> Tensor:
        """(B, slots) bool: which slots hold a frame."""
        return self.slot_frame >= 0

    def positions(self) -> tuple[Tensor, Tensor]:
        """Temporal positions of each slot (B, slots) and of the next frame (B,) (``slot_positions``)."""
        return slot_positions(self.slot_frame, self.frames_seen)

    def plan(self, latents: Tensor, fast: FastPaths = REFERENCE) -> CommitPlan:
        """The plan for committing ``latents`` (B, count, N, C) next (``plan_commit``)."""
        return plan_commit(self.shape, self.slot_frame, self.summary, self.frames_seen, latents, fast.shared_slot)

    def replace_rows(self, rows: Tensor, other: "KVCache") -> None:
        """Copy all of ``other`` (a cache of ``len(rows)`` envs) into the envs ``rows``."""
        self._stale_slots.clear()
        self.keys[:, rows] = other.keys
        self.values[:, rows] = other.values
        self.slot_frame[rows] = other.slot_frame
        self.frames_seen[rows] = other.frames_seen
        self.summary[rows] = other.summary

    # ---- keys and values ------------------------------------------------------------
    def context(
        self,
        layer: int,
        rotate: Callable[[Tensor, slice], Tensor],
        new_keys: Tensor,
        new_values: Tensor,
        fast: FastPaths = REFERENCE,
    ) -> tuple[Tensor, Tensor]:
        """Layer ``layer``'s cached keys, positioned by ``rotate`` (keys of the slots ``slice``
        -> the same, rotated), then ``new_keys``; its cached values, then ``new_values`` (all
        B, heads, tokens, head_dim, in the new ones' dtype): the keys and values a pass
        attends to. With ``fast.reuse_context`` they live in a buffer kept up to date:
        ``write`` puts a new frame's rotated keys there too, and a window frame's position
        never changes (``slot_positions``), so per pass only the sinks and memory are
        rotated and copied anew, and each pass writes its own tokens after them."""
        dtype, cached = new_keys.dtype, self.keys.shape[3]
        if not fast.reuse_context:
            return (
                torch.cat([rotate(self.keys[layer].to(dtype), slice(0, self.shape.slots)), new_keys], dim=2),
                torch.cat([self.values[layer].to(dtype), new_values], dim=2),
            )
        batch, heads, tokens, head_dim = new_keys.shape
        context = self._contexts.get(layer)
        if context is None or context[0].shape[2] != cached + tokens or context[0].dtype != dtype:
            keys = new_keys.new_empty(batch, heads, cached + tokens, head_dim)
            values = torch.empty_like(keys)
            self._contexts[layer] = keys, values
            self._stale_slots.pop(layer, None)
        else:
            keys, values = context
        stale = self._stale_slots.get(layer, self.shape.slots)
        if stale:
            part = slice(0, stale * self.shape.tokens_per_frame)
            keys[:, :, part] = rotate(self.keys[layer][:, :, part].to(dtype), slice(0, stale))
            values[:, :, part] = self.values[layer][:, :, part]
            self._stale_slots[layer] = 0
        keys[:, :, cached:], values[:, :, cached:] = new_keys, new_values
        return keys, values

    def write(
        self, layer: int, keys: Tensor, values: Tensor, plan: CommitPlan, rotated_keys: Tensor, fast: FastPaths = REFERENCE
    ) -> None:
        """Store one layer's keys/values (B, heads, count * tokens, head_dim) in ``plan.slots``,
        first moving the frames they overwrite into memory as planned. With
        ``fast.reuse_context``, ``rotated_keys`` (the keys at their frames' positions, in the
        dtype ``context`` gave) go to the layer's buffer too; without, the buffer is marked
        stale. Call it after the layer has attended: the overwritten slot is part of that
        pass's context."""
        keys, values, rotated_keys = keys.detach(), values.detach(), rotated_keys.detach()
        n = self.shape.tokens_per_frame
        rows = torch.arange(self.batch, device=plan.slots.device)[:, None]
        stores = [store.transpose(1, 2) for store in (self.keys[layer], self.values[layer])]  # token-major views
        for source, destination, kept in plan.moves:
            src, dst = token_index(source[:, None], n), token_index(destination[:, None], n)
            keep = kept[:, None, None, None]
            for store in stores:
                store[rows, dst] = torch.where(keep, store[rows, src], store[rows, dst])
        buffers = self._contexts.get(layer)
        if buffers is not None and not fast.reuse_context:
            self._stale_slots.pop(layer, None)
            buffers = None
        targets = [self.keys[layer], self.values[layer]] + list(buffers or ())
        news = [keys, values] + ([rotated_keys, values] if buffers else [])
        if plan.shared_tokens is not None:
            for target, new in zip(targets, news):
                target[:, :, plan.shared_tokens] = new
            return
        index = token_index(plan.slots, n)
        for target, new in zip(targets, news):
            target.transpose(1, 2)[rows, index] = new.transpose(1, 2).to(target.dtype)

    def advance(self, plan: CommitPlan) -> None:
        """Record the committed frames in ``plan.slots`` and the planned memory; call it once
        after the pass whose layers ``write`` the plan."""
        s = self.shape
        moving = s.sink_frames + s.memory_frames  # positions change; memory may have new frames
        for layer, stale in self._stale_slots.items():
            self._stale_slots[layer] = max(stale, moving)
        slots, count = plan.slots, plan.slots.shape[1]
        if plan.memory_frames is not None and plan.memory_summary is not None:  # both, or neither
            self.slot_frame[:, s.memory], self.summary[:, s.memory] = plan.memory_frames, plan.memory_summary
        frame = self.frames_seen[:, None] + torch.arange(count, device=slots.device)
        self.slot_frame.scatter_(1, slots, frame)
        if plan.new_summary is not None:
            rows = torch.arange(self.batch, device=slots.device)[:, None]
            self.summary[rows, slots] = plan.new_summary
        self.frames_seen += count
