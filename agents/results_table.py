"""The agents' results table (docs/results.md, "Agents") from the runs' ``summary.json`` files:
mean and spread (standard deviation over seeds) of the real and the dream-predicted
return per scene and world, with env steps and wall clock, and each trained policy's
share of the MuJoCo-trained PPO's gain over random, (R - R_random) / (R_mujoco - R_random):
the issue's "80 % of the real return" in a form that holds for negative returns too.

    .venv/bin/python agents/results_table.py --runs runs/agents
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agents.common import parse


@dataclass
class Args:
    runs: Path = field(
        default=Path("runs/agents"),
        metadata={"help": "folder of runs (RUN/summary.json) or of kept summaries (RUN.json, as benchmarks/results/agents)"},
    )


def main(argv: list[str] | None = None) -> None:
    args = parse(Args, argv, description=__doc__.split("\n\n")[0])
    groups = defaultdict(list)
    # runs/agents/<run>/summary.json, or the copies kept as benchmarks/results/agents/<run>.json
    for path in sorted([*args.runs.glob("*/summary.json"), *args.runs.glob("*.json")]):
        summary = json.loads(path.read_text())
        if "real_return" in summary:  # ppo_dream.py runs and baselines (plan.py and ppo_duo.py summarize differently)
            world = summary["args"]["world"]
            if world == "dream" and summary["args"].get("dtype") == "bfloat16":  # the default (auto) is float32 on the CPU
                world = "dream (bfloat16)"
            if world == "dream" and summary["args"].get("dream_steps") is not None:  # short dreams (ppo_dream.py --dream-steps)
                world = f"dream, {summary['args']['dream_steps']}-step episodes"
                if summary["args"].get("start_contexts") is not None:
                    world += f" from {summary['args']['start_contexts']} starts within {summary['args']['start_within']} steps"
                    if summary["args"].get("start_policy", "mix") != "mix":
                        world += f" of {summary['args']['start_policy']}"
            groups[(summary["args"]["scene"], world)].append(summary)
    head = [
        "scene",
        "trained in",
        "seeds",
        "env steps",
        "real return",
        "dream-predicted return",
        "share of MuJoCo PPO's gain",
        "train env-steps/s",
        "wall clock per run (s)",
    ]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    mean_real = {key: np.mean([r["real_return"] for r in runs]) for key, runs in groups.items()}
    for (scene, world), runs in groups.items():
        real, dream = np.array([r["real_return"] for r in runs]), np.array([r["dream_return"] for r in runs])
        random, mujoco = mean_real.get((scene, "random")), mean_real.get((scene, "mujoco"))
        measurable = world not in ("random", "still") and random is not None and mujoco is not None and mujoco > random
        share = f"{(real.mean() - random) / (mujoco - random):.2f}" if measurable else "-"
        rates = [r["train_env_steps_per_s"] for r in runs if "train_env_steps_per_s" in r]
        label = {"random": "- (uniform random)", "still": "- (zero actions)"}.get(world, world)
        print(
            "| "
            + " | ".join(
                [
                    scene,
                    label,
                    str(len(runs)),
                    str(runs[0]["env_steps"]),
                    f"{real.mean():.1f} ± {real.std():.1f}",
                    f"{dream.mean():.1f} ± {dream.std():.1f}",
                    share,
                    f"{np.mean(rates):.0f}" if rates else "-",
                    f"{np.mean([r['wall_seconds'] for r in runs]):.0f}",
                ]
            )
            + " |"
        )


if __name__ == "__main__":
    main()
