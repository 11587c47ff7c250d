"""Which frames should long-term memory keep? Rules replayed on real revisit episodes.

The revisit episodes of ``worldenv eval --suite memory`` (turn to an object, turn away
for T frames, turn back) are encoded by a bundle's tokenizer, and each retention rule
is replayed over them exactly as the KV cache would run it (frames leave a window of
``--window`` frames after a sink). When the frame after the return is generated, is
the view that was left behind still in memory? Reported per rule, memory size and T:
the share of episodes whose memory holds that exact view, and the mean heading gap
(degrees) between the returning view and the nearest remembered one. No network is
involved: this isolates the retention rule from what the backbone makes of it.

    python benchmarks/memory_rules.py --checkpoint checkpoints/panorama --episodes 16
"""

import argparse
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from worldenv.checkpoint import load_bundle  # noqa: E402
from worldenv.memory import frame_summary, memory_slot_for  # noqa: E402
from worldenv.eval.revisit import RevisitConfig, real_revisits  # noqa: E402
from worldenv.scenes.panorama import wrap_angle  # noqa: E402
from worldenv.training.latent_windows import encode_frames  # noqa: E402
from worldenv.world_model import load_tokenizer  # noqa: E402


def coverage(summaries, frames, candidate):
    """worldenv's rule (``memory_slot_for``)."""
    return int(memory_slot_for(summaries[None], frames[None], candidate[None])[0])


def older_of_closest_pair(summaries, frames, candidate):
    """The first rule tried: the older frame of the most similar pair goes."""
    if (frames < 0).any():
        return int((frames < 0).float().argmax())
    items = torch.cat([summaries, candidate[None]])
    similarity = items @ items.T
    similarity.fill_diagonal_(-torch.inf)
    i, j = divmod(int(similarity.argmax()), len(items))
    numbers = torch.cat([frames, torch.tensor([10**9])])
    return int(i if numbers[i] < numbers[j] else j)


def most_recent(summaries, frames, candidate):
    """A longer window: the oldest frame in memory goes."""
    return int(frames.argmin()) if (frames >= 0).all() else int((frames < 0).float().argmax())


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="checkpoints/panorama")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--away", type=int, nargs="+", default=[8, 32, 64, 128, 256])
    parser.add_argument("--memory", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--window", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = load_tokenizer(load_bundle(args.checkpoint))
    config = RevisitConfig(episodes=args.episodes)
    results = {}
    for away in args.away:
        real = real_revisits(config, away)
        returned = config.context + away
        for e in range(args.episodes):
            summaries = frame_summary(encode_frames(tokenizer, real["frames"][e]).float())
            headings = real["states"]["qpos"][e, :, 2]
            left_behind = real["frames"][e, returned]
            for name, rule in RULES.items():
                for size in args.memory:
                    memory = replay(rule, summaries, size, sinks=1, window=args.window, until=returned)
                    exact = any(np.array_equal(real["frames"][e, f], left_behind) for f in memory)
                    gap = min((abs(wrap_angle(headings[f] - headings[returned])) for f in memory), default=np.pi)
                    entry = results.setdefault((name, size, away), {"exact": [], "gap": []})
                    entry["exact"].append(exact)
                    entry["gap"].append(np.degrees(gap))
    print(f"{args.episodes} revisit episodes per T; window {args.window}, 1 sink; "
          "cells: share of episodes whose memory holds the exact view left behind / mean heading gap to the nearest remembered view (deg)\n")
    head = ["rule", "memory frames"] + [f"T={t}" for t in args.away]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    for name in RULES:
        for size in args.memory:
            cells = [f"{np.mean(results[(name, size, t)]['exact']):.2f} / {np.mean(results[(name, size, t)]['gap']):.1f}"
                     for t in args.away]
            print("| " + " | ".join([name, str(size), *cells]) + " |")


if __name__ == "__main__":
    main()
