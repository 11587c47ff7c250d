"""The retention rule, as pure functions of the cache's slot index: which slot a new frame
takes (sinks, then a rolling window), where a frame leaving the window goes (long-term
memory, kept for coverage), and the temporal position every cached frame is attended at.

``plan_commit`` puts them together into a ``CommitPlan``, the value that
``KVCache.write`` and ``KVCache.advance`` carry out. Nothing here reads tensor values on
the host unless asked to (``shared_slot``), and nothing loops over envs.
"""

from dataclasses import dataclass

import torch
from torch import Tensor


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

    @property
    def slots(self) -> int:
        return self.sink_frames + self.memory_frames + self.window_frames

    @property
    def memory(self) -> slice:
        """The memory's slots (slots are laid out ``[sinks | memory | window]``)."""
        return slice(self.sink_frames, self.sink_frames + self.memory_frames)

    @property
    def summary_dim(self) -> int:
        """Length of the per-frame summary that memory compares frames by (0 without memory)."""
        return self.tokens_per_frame * self.latent_channels if self.memory_frames else 0


TIE = 1e-3  # cosine similarities this close count as equal (a still camera's frames)


def frame_summary(latent: Tensor) -> Tensor:
    """(..., N, C) latent -> (..., N * C) unit vector (mean removed): frames showing the
    same thing from the same place have summaries with cosine near 1."""
    flat = latent.flatten(-2).float()
    flat = flat - flat.mean(-1, keepdim=True)
    return flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def memory_slot_for(summaries: Tensor, frames: Tensor, candidate: Tensor) -> Tensor:
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
    def redundancy(row: Tensor, partner: Tensor) -> Tensor:
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


def remember(frames: Tensor, summaries: Tensor, leaving: Tensor, frame: Tensor, candidate: Tensor) -> tuple[Tensor, Tensor]:
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


def slots_for(shape: CacheShape, frames_seen: Tensor, count: int) -> Tensor:
    """(B, count) slot of each env's next ``count`` frames, given how many frames each env
    has committed (B,): the first ``sink_frames`` frames are sinks, the rest roll through
    the window."""
    if count > shape.window_frames:
        raise ValueError(f"cannot commit {count} frames at once into a window of {shape.window_frames}")
    frame = frames_seen[:, None] + torch.arange(count, device=frames_seen.device)
    rolling = shape.sink_frames + shape.memory_frames + (frame - shape.sink_frames).remainder(shape.window_frames)
    return torch.where(frame < shape.sink_frames, frame, rolling)


def slot_positions(slot_frame: Tensor, frames_seen: Tensor) -> tuple[Tensor, Tensor]:
    """Temporal positions: of each slot (B, slots) and of the next frame (B,), from the frame
    number each slot holds (B, slots; -1: empty) and the frames committed (B,). The next
    frame's is its frame number; a slot's is as far before it as the slot's rank among the
    env's cached frames is from their count (a window frame's: its frame number), so a
    dream of any length sees the relative positions of a training sequence."""
    valid = slot_frame >= 0
    earlier = (slot_frame[:, None, :] < slot_frame[:, :, None]) & valid[:, None, :]  # (B, slot, other slot)
    shift = frames_seen - valid.sum(-1)  # frames no longer cached
    return earlier.sum(-1) + shift[:, None], frames_seen.clone()


def token_index(slots: Tensor, tokens_per_frame: int) -> Tensor:
    """(B, count) slots -> (B, count * tokens_per_frame) token rows in the cache."""
    n = tokens_per_frame
    return (slots[..., None] * n + torch.arange(n, device=slots.device)).flatten(1)


@dataclass(frozen=True)
class CommitPlan:
    """A commit of ``count`` frames, decided before its pass: where the new frames go, which
    window frames they overwrite and where in memory those go, and the memory afterwards.
    ``KVCache.write`` carries out the moves and the writes per layer (after that layer has
    attended, so the pass reads the cache as the passes that denoised its frames did);
    ``KVCache.advance`` then records the frames and the memory."""

    slots: Tensor  # (B, count) slot of each new frame
    # Per new frame, oldest first: (slot it overwrites (B,), memory slot (B,), kept (B,) bool):
    # the overwritten window frame's keys and values move to that memory slot where kept.
    moves: tuple[tuple[Tensor, Tensor, Tensor], ...]
    memory_frames: Tensor | None  # (B, M) frame numbers in memory after the moves (None without memory)
    memory_summary: Tensor | None  # (B, M, D) their summaries
    new_summary: Tensor | None  # (B, count, D) summaries of the new frames (None without memory)
    # The token range every env writes when all write one frame into the same slot (envs in
    # step): ``write`` then copies a slice, 4x faster than indexing per env. None: index per env.
    shared_tokens: slice | None = None


def plan_commit(
    shape: CacheShape, slot_frame: Tensor, summary: Tensor, frames_seen: Tensor, latents: Tensor, shared_slot: bool = False
) -> CommitPlan:
    """The plan for committing ``latents`` (B, count, N, C) to a cache whose slots hold the
    frames ``slot_frame`` (B, slots; -1: empty) with summaries ``summary`` (B, slots, D),
    ``frames_seen`` (B,) committed so far. Reads nothing it is given in place.
    ``shared_slot``: check on the host whether every env writes one frame into the same slot
    (for ``CommitPlan.shared_tokens``), a host wait on an accelerator."""
    count = latents.shape[1]
    slots = slots_for(shape, frames_seen, count)
    shared_tokens = None
    if shared_slot and count == 1 and bool((slots == slots[0]).all()):
        first = int(slots[0, 0]) * shape.tokens_per_frame
        shared_tokens = slice(first, first + shape.tokens_per_frame)
    if not shape.memory_frames:
        return CommitPlan(slots, (), None, None, None, shared_tokens)
    memory = shape.memory
    frames, summaries = slot_frame[:, memory].clone(), summary[:, memory].clone()
    rows = torch.arange(slots.shape[0], device=slots.device)
    moves = []
    for k in range(count):  # oldest first; at most a window's worth
        source = slots[:, k]
        leaving = (slot_frame[rows, source] >= 0) & (source >= memory.stop)  # a window slot (sinks never leave)
        slot, kept = remember(frames, summaries, leaving, slot_frame[rows, source], summary[rows, source])
        moves.append((source, memory.start + slot, kept))
    return CommitPlan(slots, tuple(moves), frames, summaries, frame_summary(latents), shared_tokens)
