"""Does the dream move what never moves? How far each probe quantity travels from its
start under zero, random and constant actions.

A batch of dreams starts from the bundle's real starts (reset seeds ``seed + i``); the
state probe reads every frame, and each quantity's displacement from its first reading
is averaged over the batch at the chosen steps (task units: metres for points, radians
for angles). In MuJoCo a target never moves. A dream whose targets travel with the
agents under a push, and stay put when nothing is pushed, drags them along through its
action pathway. A dream whose targets drift under zero actions too is losing them to
its own rollout.

    python benchmarks/static_drift.py --scene duo --steps 100 --at 10 25 50 100
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import worldenv  # noqa: F401, I001  (sets MUJOCO_GL before mujoco is imported)
from worldenv.checkpoint import load_bundle, shipped_checkpoint
from worldenv.envs import DiffusionWorldVectorEnv
from worldenv.eval.probe import load_probe, probe_errors

POLICIES = ("zero", "random", "constant")


def displacements(
    env: DiffusionWorldVectorEnv, probe, policy: str, steps: int, at: list[int], seed: int
) -> dict[int, dict[str, float]]:
    """{step: {quantity: mean displacement from the first frame}} under ``policy``, from the
    starts that ``seed`` draws (the same for every policy)."""
    observations, _ = env.reset(seed=seed)
    first = probe.predict(observations)
    rng = np.random.default_rng(seed)
    low, high = env.single_action_space.low, env.single_action_space.high
    held = rng.uniform(low, high, (env.num_envs, *low.shape)).astype(np.float32)
    moved = {}
    for step in range(1, steps + 1):
        if policy == "zero":
            actions = np.zeros_like(held)
        elif policy == "random":
            actions = rng.uniform(low, high, held.shape).astype(np.float32)
        else:
            actions = held
        observations, *_ = env.step(actions)
        if step in at:
            moved[step] = {
                name: float(value.mean())
                for name, value in probe_errors(env.dream.scene, probe.predict(observations), first).items()
            }
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", default="duo")
    parser.add_argument("--checkpoint", type=Path, default=None, help="dream bundle; default: the scene's shipped one")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--envs", type=int, default=16, help="dreams in the batch")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--at", type=int, nargs="+", default=[10, 25, 50, 100], help="steps at which to read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.envs < 1 or args.steps < 1 or not all(1 <= s <= args.steps for s in args.at):
        parser.error(
            f"expected --envs >= 1, --steps >= 1 and every --at in [1, --steps], got {args.envs}, {args.steps}, {args.at}"
        )
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or shipped_checkpoint(args.scene)
    probe = load_probe(load_bundle(checkpoint))
    env = DiffusionWorldVectorEnv(
        args.envs, scene=args.scene, checkpoint=checkpoint, max_episode_steps=args.steps + 1, dtype=args.dtype
    )
    report = {policy: displacements(env, probe, policy, args.steps, sorted(set(args.at)), args.seed) for policy in args.policies}
    env.close()
    quantities = list(next(iter(next(iter(report.values())).values())))
    print("| actions | step | " + " | ".join(f"{q} moved" for q in quantities) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in quantities) + " |")
    for policy, moved in report.items():
        for step, values in moved.items():
            print(f"| {policy} | {step} | " + " | ".join(f"{values[q]:.3f}" for q in quantities) + " |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "scene": args.scene,
                    "checkpoint": str(checkpoint),
                    "envs": args.envs,
                    "seed": args.seed,
                    "displacement": report,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
