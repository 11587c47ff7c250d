"""Which frames should long-term memory keep? Retention rules replayed on real revisit episodes.

The revisit episodes of ``worldenv eval --suite memory`` (turn to an object, turn away for
T frames, turn back) are encoded by a bundle's tokenizer, and each retention rule is
replayed over them exactly as the KV cache would run it (frames leave a window of
``window`` frames after the sinks). When the frame after the return is generated, is the
view that was left behind still in memory? No network is involved: this isolates the
retention rule from what the backbone makes of it.
"""

import numpy as np
import torch

from worldenv.eval.revisit import RevisitConfig, real_revisits
from worldenv.memory import frame_summary, memory_slot_for
from worldenv.scenes.panorama import wrap_angle
from worldenv.training.latent_windows import encode_frames


def coverage(summaries: torch.Tensor, frames: torch.Tensor, candidate: torch.Tensor) -> int:
    """worldenv's rule (``memory_slot_for``)."""
    return int(memory_slot_for(summaries[None], frames[None], candidate[None])[0])


def older_of_closest_pair(summaries: torch.Tensor, frames: torch.Tensor, candidate: torch.Tensor) -> int:
    """The first rule tried: the older frame of the most similar pair goes."""
    if (frames < 0).any():
        return int((frames < 0).float().argmax())
    items = torch.cat([summaries, candidate[None]])
    similarity = items @ items.T
    similarity.fill_diagonal_(-torch.inf)
    i, j = divmod(int(similarity.argmax()), len(items))
    numbers = torch.cat([frames, torch.tensor([10**9])])
    return int(i if numbers[i] < numbers[j] else j)


def most_recent(summaries: torch.Tensor, frames: torch.Tensor, candidate: torch.Tensor) -> int:
    """A longer window: the oldest frame in memory goes."""
    return int(frames.argmin()) if (frames >= 0).all() else int((frames < 0).float().argmax())


# A rule: (summaries (M, D) in memory, their frame numbers (M,) with -1 for empty, the
# leaving frame's summary (D,)) -> the slot it takes, or -1 to let it go.
RULES = {"coverage (worldenv)": coverage, "older of closest pair": older_of_closest_pair, "most recent (FIFO)": most_recent}


def replay(rule, summaries: torch.Tensor, memory_frames: int, sinks: int, window: int, until: int) -> list[int]:
    """Frames in memory when frame ``until`` is generated (frames < until - window have left)."""
    frames = torch.full((memory_frames,), -1, dtype=torch.long)
    kept = torch.zeros(memory_frames, summaries.shape[1])
    for leaving in range(sinks, until - window):
        slot = rule(kept, frames, summaries[leaving])
        if slot >= 0:
            frames[slot], kept[slot] = leaving, summaries[leaving]
    return [int(f) for f in frames if f >= 0]


def rules_on_revisits(
    tokenizer, episodes: int, away: list[int], memory: list[int], window: int, sinks: int = 1
) -> dict[tuple[str, int, int], dict[str, float]]:
    """Per (rule, memory frames, T): ``exact``, the share of ``episodes`` revisit episodes whose
    memory holds the exact view left behind when the frame after the return is generated, and
    ``gap``, the mean heading gap (degrees) from the returning view to the nearest remembered one."""
    config = RevisitConfig(episodes=episodes)
    results: dict[tuple[str, int, int], dict[str, list]] = {}
    for t in away:
        real = real_revisits(config, t)
        returned = config.context + t
        for e in range(episodes):
            summaries = frame_summary(encode_frames(tokenizer, real["frames"][e]).float())
            headings = real["states"]["qpos"][e, :, 2]
            left_behind = real["frames"][e, returned]
            for name, rule in RULES.items():
                for size in memory:
                    kept = replay(rule, summaries, size, sinks=sinks, window=window, until=returned)
                    exact = any(np.array_equal(real["frames"][e, f], left_behind) for f in kept)
                    gap = min((abs(wrap_angle(headings[f] - headings[returned])) for f in kept), default=np.pi)
                    entry = results.setdefault((name, size, t), {"exact": [], "gap": []})
                    entry["exact"].append(exact)
                    entry["gap"].append(np.degrees(gap))
    return {key: {"exact": float(np.mean(entry["exact"])), "gap": float(np.mean(entry["gap"]))} for key, entry in results.items()}
