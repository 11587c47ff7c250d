"""What a duo policy sees in the dream, as pictures: one closed-loop dream episode of a
parameter-shared PPO policy (``agents/ppo_duo.py``'s ``policy.zip``) or of random
actions, the frames at chosen steps side by side in one PNG.

A probe reading can take a faded agent for a moved one; a picture cannot. On the
ActionFlow duo teacher it shows the targets, static in MuJoCo, sliding towards their
agents (docs/experiments/2026-11-30-agents-duo.md, "Duo").

    python benchmarks/duo_strip.py --policy runs/agents/duo-mujoco-seed0/policy.zip --out strip.png
"""

import argparse
from pathlib import Path

import imageio.v3 as imageio
import numpy as np
import torch

import worldenv  # noqa: F401, I001  (sets MUJOCO_GL before mujoco is imported)
import worldenv.envs as dream_envs
from agents.ppo_duo import Seer, agent_actions
from worldenv.checkpoint import load_bundle, shipped_checkpoint
from worldenv.eval.probe import load_probe


def dream_strip(checkpoint, policy_path: str, seed: int, steps: list[int], stack: int = 2, **dream_kwargs) -> np.ndarray:
    """(64, 64 * len(steps), 3) uint8: agent_0's observation after each step in ``steps``."""
    from stable_baselines3 import PPO

    probe = load_probe(load_bundle(checkpoint))
    if policy_path == "random":
        policy = None
    else:
        ppo = PPO.load(policy_path, device="cpu")
        policy = lambda seen: ppo.predict(seen, deterministic=True)[0]  # noqa: E731
    env = dream_envs.parallel_env(scene="duo", checkpoint=checkpoint, max_cycles=max(steps) + 1, **dream_kwargs)
    observations, _ = env.reset(seed=seed)
    seer, frames = Seer(probe, stack), []
    for agent in env.possible_agents:
        env.action_space(agent).seed(seed)
    for step in range(max(steps) + 1):
        observations, *_ = env.step(agent_actions(env, observations, policy, seer))
        if step in steps:
            frames.append(observations[env.possible_agents[0]])
    env.close()
    return np.concatenate(frames, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="duo bundle; default: the shipped one")
    parser.add_argument("--policy", default="random", help="a ppo_duo.py policy.zip, or random")
    parser.add_argument("--seed", type=int, default=3_000_001, help="the dream's reset seed")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 10, 20, 40, 60, 80, 99])
    parser.add_argument("--sampling-steps", type=int, default=None)
    parser.add_argument("--commit", choices=["latent", "frame"], default=None)
    parser.add_argument("--scale", type=int, default=3, help="pixels per frame pixel in the PNG")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if min(args.steps) < 0:
        parser.error(f"--steps: expected steps >= 0, got {args.steps}")
    torch.set_num_threads(args.threads)
    strip = dream_strip(
        args.checkpoint or shipped_checkpoint("duo"),
        args.policy,
        args.seed,
        sorted(set(args.steps)),
        sampling_steps=args.sampling_steps,
        commit=args.commit,
    )
    imageio.imwrite(args.out, np.kron(strip, np.ones((args.scale, args.scale, 1), np.uint8)))


if __name__ == "__main__":
    main()
