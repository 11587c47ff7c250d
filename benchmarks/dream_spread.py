"""How much do dreams of the same start under the same actions differ from one noise seed to another?

MuJoCo is deterministic: one start and one action sequence give one future. A dream
samples each frame from noise, so the same start and actions give a spread of futures,
and a policy trained in the dream must do well across it. A dream with almost no
spread (a one-step Euler step of the teacher lands on the conditional mean) could be
exploited exactly. For each of ``--starts`` start contexts of the bundle's bank,
``--samples`` dreams (their own noise seeds) follow the same actions (zero, or uniform random shared by every sample),
and the state probe reads every frame. The spread at a step is the mean probe
difference between two samples, over all pairs and starts, in task units.

    python benchmarks/dream_spread.py --scene cartpole --model teacher --sampling-steps 4 --action-guidance 1.6
"""

import argparse
import itertools
import json
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from dream_arguments import add_dream_arguments  # noqa: E402

from worldenv.checkpoint import (
    load_bundle,  # noqa: E402
    shipped_checkpoint,  # noqa: E402
)
from worldenv.dream_config import DreamConfig  # noqa: E402
from worldenv.envs import Dream  # noqa: E402
from worldenv.eval.probe import load_probe, probe_errors  # noqa: E402


def spreads(dream: Dream, probe, policy: str, samples: int, starts: int, steps: int, seed: int) -> dict[str, list[float]]:
    """{quantity: [mean pairwise difference between ``samples`` dreams at step 1, 2, ...]};
    ``dream``: loaded for a batch of ``samples``."""
    model, rng = dream.model, np.random.default_rng(seed)
    action_shape = dream.contexts.actions.shape[-1:]
    totals: dict[str, np.ndarray] = {}
    first, second = (list(side) for side in zip(*itertools.combinations(range(samples), 2)))  # every pair of samples
    for start in range(starts):
        frames = np.repeat(np.asarray(dream.contexts.frames[start : start + 1]), samples, 0)
        actions = np.repeat(np.asarray(dream.contexts.actions[start : start + 1]), samples, 0)
        model.reset(frames, actions, torch.arange(samples) + 1000 * start)
        for step in range(steps):
            action = (
                np.zeros(action_shape, np.float32) if policy == "zero" else rng.uniform(-1, 1, action_shape).astype(np.float32)
            )
            dreamed, _, _ = model.step(np.repeat(action[None], samples, 0))
            readings = probe.predict(dreamed.cpu().numpy())
            for name, error in probe_errors(dream.scene, readings[first], readings[second]).items():
                totals.setdefault(name, np.zeros(steps))[step] += error.mean() / starts
    return {name: [round(float(v), 5) for v in values] for name, values in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dream_arguments(parser)
    parser.add_argument("--policy", choices=["zero", "uniform"], default="uniform")
    parser.add_argument("--samples", type=int, default=8, help="noise seeds per start")
    parser.add_argument("--starts", type=int, default=8, help="start contexts of the bundle's bank")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seed of the uniform actions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.samples < 2:
        parser.error(f"--samples: expected at least 2 dreams per start to compare, got {args.samples}")
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or shipped_checkpoint(args.scene)
    served = DreamConfig(
        model=args.model, sampling_steps=args.sampling_steps, action_guidance=args.action_guidance, commit=args.commit
    )
    dream = Dream.load(args.samples, served, scene=args.scene, checkpoint=checkpoint)
    if args.starts > len(dream.contexts.frames):
        parser.error(f"--starts: the bundle's bank holds {len(dream.contexts.frames)} starts, got {args.starts}")
    probe = load_probe(load_bundle(checkpoint))
    with torch.inference_mode():
        result = spreads(dream, probe, args.policy, args.samples, args.starts, args.steps, args.seed)
    print(
        f"{args.scene}, {args.policy} actions, {args.samples} noise seeds x {args.starts} starts: "
        "mean difference between two dreams at step 1, 2, ..."
    )
    for name, values in result.items():
        print(f"{name}: " + " ".join(f"{v:.4f}" for v in values))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "spread": result}, indent=2))


if __name__ == "__main__":
    main()
