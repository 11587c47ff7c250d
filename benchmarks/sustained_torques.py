"""How often does a joint get a small push held for many steps: in the training data,
and under a trained policy?

A window counts when, for all of its ``--window`` steps, one action dimension keeps one
sign with an amplitude in [``--low``, ``--high``]: a gentle push held long enough for
the arm to gather speed. A world model that has rarely seen such windows does not
integrate them (docs/experiments/2026-11-29-commit-frame.md, "What the dream commits"), and a policy that reaches
with them is under-rated in the dream (docs/experiments/2026-11-29-agents-reacher.md).

    python benchmarks/sustained_torques.py --dataset data/reacher --episodes 200 \\
        --policy benchmarks/results/agents/reacher-200k/reacher-mujoco-seed0.policy.zip
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402


def sustained_share(episodes: list[np.ndarray], window: int, low: float, high: float) -> float:
    """Share of (window, action dimension) pairs over ``episodes`` ((T, A) actions each)
    in which the action keeps one sign and an amplitude in [low, high]."""
    hits = total = 0
    for actions in episodes:
        if len(actions) < window:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(actions, window, axis=0)  # (T - w + 1, A, w)
        amplitude = np.abs(windows)
        one_sign = np.all(windows > 0, -1) | np.all(windows < 0, -1)
        small = np.all((amplitude >= low) & (amplitude <= high), -1)
        hits += int((one_sign & small).sum())
        total += one_sign.size
    return hits / max(total, 1)


def dataset_actions(path: Path, episodes: int) -> list[np.ndarray]:
    from worldenv.data.dataset import load_dataset

    data = load_dataset(path, slice(0, episodes))
    # Each episode's first frame has no action before it.
    return [data.actions[data.episode_frames(e)][1:] for e in range(data.num_episodes)]


def policy_actions(policy: Path, scene: str, episodes: int, seed: int) -> list[np.ndarray]:
    """Actions of an SB3 policy trained on probe readings (``agents/ppo_dream.py``), acting in
    MuJoCo from the reset seeds ``seed``, ``seed + 1``, ..."""
    from stable_baselines3 import PPO

    from agents.observations import observed
    from agents.ppo_dream import Args, frames_env
    from worldenv.checkpoint import load_bundle, shipped_checkpoint
    from worldenv.eval.probe import load_probe

    agent = PPO.load(str(policy), device="cpu")
    probe = load_probe(load_bundle(shipped_checkpoint(scene)))
    venv = observed(frames_env(Args(scene=scene), "mujoco", episodes, seed), "probe", probe, 2)
    observations, actions, running = venv.reset(), [], np.ones(episodes, bool)
    while running.any():
        action = agent.predict(observations, deterministic=True)[0]
        observations, _, dones, _ = venv.step(action)
        actions.append(np.where(running[:, None], action, np.nan))
        running &= ~dones
    venv.close()
    steps = np.stack(actions, 1)  # (episodes, T, A)
    return [episode[~np.isnan(episode).any(-1)] for episode in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, help="a dataset directory (worldenv collect)")
    parser.add_argument("--episodes", type=int, default=200, help="dataset episodes read, from the first")
    parser.add_argument("--policy", type=Path, help="an SB3 policy.zip trained on probe readings, run in MuJoCo")
    parser.add_argument("--scene", default="reacher")
    parser.add_argument("--policy-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1_000_000, help="first MuJoCo reset seed for the policy")
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--low", type=float, default=0.05)
    parser.add_argument("--high", type=float, default=0.4)
    args = parser.parse_args()
    if args.dataset is None and args.policy is None:
        parser.error("expected --dataset, --policy or both")
    described = f"{args.window}-step windows of one sign, |a| in [{args.low}, {args.high}]"
    if args.dataset is not None:
        share = sustained_share(dataset_actions(args.dataset, args.episodes), args.window, args.low, args.high)
        print(f"{args.dataset} (first {args.episodes} episodes): {share:.4f} of {described}")
    if args.policy is not None:
        share = sustained_share(
            policy_actions(args.policy, args.scene, args.policy_episodes, args.seed), args.window, args.low, args.high
        )
        print(f"{args.policy} ({args.policy_episodes} MuJoCo episodes): {share:.4f} of {described}")


if __name__ == "__main__":
    main()
