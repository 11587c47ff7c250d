"""The KV cache of the block-causal backbone and the rule that decides what it keeps:
preallocated, a few *sink* frames kept forever, a rolling window of the most recent
frames, and optionally a long-term *memory* of earlier frames chosen for coverage.

- ``retention.py``: the rule, as pure functions of the slot index (``slots_for``,
  ``memory_slot_for`` / ``remember``, ``slot_positions``) and ``plan_commit``, which
  turns them into a ``CommitPlan`` for one commit.
- ``cache.py``: ``KVCache``, the tensor store that carries out a plan, and
  ``FastPaths``, the shortcuts a caller may allow.
- ``state.py``: ``DreamState``, what a dream carries besides the cache (its last
  latent and recent actions).

Slots are laid out ``[sinks | memory | window]``. A frame that leaves the window
is not lost when the cache has memory slots: it moves into memory (its keys and
values as they were computed, no recomputation), and when memory is full one
frame of the most similar pair is dropped, the more redundant one
(``memory_slot_for``). Views seen once stay until frames that show the same
thing crowd them out, so a scene that the camera turns away from and back to is
still in memory hundreds of frames later, at a cost per step that never grows:
the new frame always attends to ``sinks + memory + window`` frames.

Keys are stored without their temporal rotary embedding. At attention time each
cached frame sits at the distance its rank among the env's cached frames (sinks
first, then memory, then the window, oldest first) gives from the new frame, so a
dream of any length sees the same relative positions as a training sequence of
``sinks + memory + window + 1`` frames ("KV-cache-relative RoPE", as in the
Self-Forcing / FlashDreams rolling caches). The positions are counted so that the
new frame's is its frame number: a window frame then keeps one position for as long
as it is cached, and only sinks and memory move. Everything is tensor arithmetic on
per-env counters: no host sync unless a ``FastPaths`` option asks for one, no Python
loop over envs.
"""

from worldenv.memory.cache import REFERENCE, FastPaths, KVCache
from worldenv.memory.retention import (
    TIE,
    CacheShape,
    CommitPlan,
    frame_summary,
    memory_slot_for,
    plan_commit,
    remember,
    slot_positions,
    slots_for,
    token_index,
)
from worldenv.memory.state import DreamState

__all__ = [
    "REFERENCE",
    "TIE",
    "CacheShape",
    "CommitPlan",
    "DreamState",
    "FastPaths",
    "KVCache",
    "frame_summary",
    "memory_slot_for",
    "plan_commit",
    "remember",
    "slot_positions",
    "slots_for",
    "token_index",
]
