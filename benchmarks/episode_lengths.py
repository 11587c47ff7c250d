"""Does the dream end episodes when MuJoCo does? Episode lengths under the same policy.

For a scene whose episodes terminate (the cartpole's pole past 0.2 rad), runs
``--episodes`` episodes of a fixed open-loop policy in MuJoCo (reset seeds 0, 1, ...)
and in the dream (the same seeds pick its start contexts), each cut at
``--max-steps``, and prints both lists of lengths. A dream that balances the pole
better than physics does, or whose termination head never fires, shows up here
before it misleads an agent.

    python benchmarks/episode_lengths.py --scene cartpole --policy uniform --episodes 8
"""

import argparse
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from dream_arguments import add_dream_arguments  # noqa: E402
from gymnasium.vector import AutoresetMode  # noqa: E402

from worldenv.envs import DiffusionWorldVectorEnv  # noqa: E402
from worldenv.scenes import make_scene  # noqa: E402


def actions_for(policy: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, shape).astype(np.float32) if policy == "uniform" else np.zeros(shape, np.float32)


def real_lengths(scene: str, policy: str, episodes: int, max_steps: int, seed: int) -> list[int]:
    env, rng, lengths = make_scene(scene, max_episode_steps=max_steps), np.random.default_rng(seed), []
    for episode in range(episodes):
        env.reset(seed=episode)
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(actions_for(policy, rng, env.action_space.shape))
            steps, done = steps + 1, terminated or truncated
        lengths.append(steps)
    env.close()
    return lengths


def dream_lengths(
    scene: str, checkpoint: str | None, policy: str, episodes: int, max_steps: int, seed: int, **dream_kwargs
) -> list[int]:
    """``dream_kwargs``: model, sampling_steps, action_guidance, commit (None: the bundle's serving choice)."""
    envs = DiffusionWorldVectorEnv(
        episodes,
        scene=scene,
        checkpoint=checkpoint,
        max_episode_steps=max_steps,
        autoreset_mode=AutoresetMode.SAME_STEP,
        **dream_kwargs,
    )
    rng = np.random.default_rng(seed)
    envs.reset(seed=list(range(episodes)))
    lengths, running = np.zeros(episodes, int), np.ones(episodes, bool)
    while running.any():
        _, _, terminated, truncated, _ = envs.step(actions_for(policy, rng, envs.action_space.shape))
        lengths += running
        running &= ~(terminated | truncated)
    envs.close()
    return lengths.tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dream_arguments(parser)
    parser.add_argument("--policy", choices=["uniform", "zero"], default="uniform")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="seed of the uniform actions")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    real = real_lengths(args.scene, args.policy, args.episodes, args.max_steps, args.seed)
    dream = dream_lengths(
        args.scene,
        args.checkpoint,
        args.policy,
        args.episodes,
        args.max_steps,
        args.seed,
        model=args.model,
        sampling_steps=args.sampling_steps,
        action_guidance=args.action_guidance,
        commit=args.commit,
    )
    print(f"{args.scene}, {args.policy} actions, episodes cut at {args.max_steps} steps")
    print(f"MuJoCo lengths: {real}")
    print(f"dream lengths:  {dream}")


if __name__ == "__main__":
    main()
