"""Which frames should long-term memory keep? Rules replayed on real revisit episodes
(``worldenv.eval.memory_rules``).

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

import torch  # noqa: E402

from worldenv.checkpoint import load_bundle  # noqa: E402
from worldenv.eval.memory_rules import RULES, rules_on_revisits  # noqa: E402
from worldenv.world_model import load_tokenizer  # noqa: E402


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
    results = rules_on_revisits(tokenizer, args.episodes, args.away, args.memory, args.window)
    print(
        f"{args.episodes} revisit episodes per T; window {args.window}, 1 sink; "
        "cells: share of episodes whose memory holds the exact view left behind / "
        "mean heading gap to the nearest remembered view (deg)\n"
    )
    head = ["rule", "memory frames"] + [f"T={t}" for t in args.away]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    for name in RULES:
        for size in args.memory:
            cells = [f"{results[(name, size, t)]['exact']:.2f} / {results[(name, size, t)]['gap']:.1f}" for t in args.away]
            print("| " + " | ".join([name, str(size), *cells]) + " |")


if __name__ == "__main__":
    main()
