"""What a dream's long-term memory would hold at each frame of the data, so that
training shows the backbone the memory it will attend to at inference.

The cache's rule (``worldenv.memory.remember``) is replayed over every
episode's real latents, all episodes in step: frame ``f`` leaves the window when
frame ``f + window`` is committed, and sinks never leave. ``memory_before(f)`` is
the memory when a window starting at ``f`` is in the cache: everything older than
``f`` except the sinks has left the window by then.
"""

import numpy as np
import torch

from worldenv.memory import frame_summary, remember


def memory_schedule(
    latents: torch.Tensor, starts: np.ndarray, lengths: np.ndarray, sink_frames: int, memory_frames: int
) -> np.ndarray:
    """(F, memory_frames) int64 global frame indices in memory before each frame (-1: empty).

    latents: (F, N, C) of episodes back to back, each starting at ``starts`` and
    ``lengths`` frames long.
    """
    memory = np.full((len(latents), memory_frames), -1, np.int64)
    episodes = len(starts)
    starts_t = torch.as_tensor(starts)
    frames = torch.full((episodes, memory_frames), -1, dtype=torch.long)  # episode-local frame numbers
    summaries = torch.zeros(episodes, memory_frames, latents.shape[1] * latents.shape[2])
    for leaving in range(sink_frames, int(lengths.max()) - 1):
        alive = torch.as_tensor(lengths > leaving + 1)  # the episode has a frame after the one leaving
        candidate = frame_summary(latents[(starts_t + leaving).clamp_max(len(latents) - 1)])
        remember(frames, summaries, alive, torch.full((episodes,), leaving, dtype=torch.long), candidate)
        local = frames[alive].numpy()
        memory[starts[alive.numpy()] + leaving + 1] = np.where(local >= 0, local + starts[alive.numpy(), None], -1)
    return memory
