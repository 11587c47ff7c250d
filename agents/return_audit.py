"""Where a reacher policy's dream return parts from its real return.

A policy that scores -7 in MuJoCo and -14 in the dream is judged wrongly by the dream,
and PPO in the dream learns from that judgement. The reacher's reward is
``-|fingertip - target| - |action|^2`` after the step, so each world's return splits
into parts that can be checked one by one:

- ``control``: ``-sum |action|^2``, exact in both worlds: a policy that pushes harder
  in the dream pays more there;
- ``distance_seen``: ``-sum |fingertip - target|`` as the bundle's state probe reads it
  off the world's own frames: does the arm get to the target in that world;
- ``head_residual``: the rest, ``return - control - distance_seen``. In the dream it is
  how far the reward head's reward is from the reward of what the dream shows; in
  MuJoCo it is the probe's own error on real frames (the floor).

Each policy (``still``, ``random``, or an SB3 ``policy.zip`` from ``ppo_dream.py``)
acts closed loop in both worlds, through the same probe observations it was trained
on, from the same starts: each dream is primed with its MuJoCo episode's first frame,
held for ``--context`` frames (the arm starts at rest), so the two worlds begin with
the same arm and target (``--no-paired``: the dream starts from its bank of contexts,
as in training). The per-step means go to ``--json`` and a plot to
``--plot``.

    python agents/return_audit.py --policies still runs/agents/reacher-mujoco-seed0/policy.zip
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import ServingArgs, dream_kwargs, exit_with  # noqa: E402
from observations import frames_of, observed  # noqa: E402
from ppo_dream import Args as PPOArgs  # noqa: E402
from ppo_dream import frames_env  # noqa: E402

PARTS = ("return", "control", "distance_seen", "head_residual")


@dataclass
class Args(ServingArgs):
    policies: list[str] = field(default_factory=lambda: ["still", "random"],
                                metadata={"help": "still, random, or paths of SB3 policy.zip files trained on probe readings"})
    checkpoint: str | None = field(default=None, metadata={"help": "dream bundle (and its probe); unset: the shipped reacher bundle"})
    paired: bool = field(default=True, metadata={"help": "start each dream from its MuJoCo episode's first frame"})
    context: int = field(default=4, metadata={"help": "frames of the held first frame that prime a paired dream"})
    stack: int = field(default=2, metadata={"help": "probe readings side by side, as the policies were trained"})
    episodes: int = field(default=10, metadata={"help": "episodes per policy and world"})
    seed: int = field(default=1_000_000, metadata={"help": "first episode seed (ppo_dream.py scores seed 0 from 1000000)"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    out: str = field(default="runs/agents/return_audit", metadata={"help": "output directory: summary.json, per_step.png"})


def policy_from(name: str, action_dim: int):
    """observations (N, d) -> actions (N, action_dim); None: uniform random (drawn by the caller)."""
    if name == "still":
        return lambda observations: np.zeros((len(observations), action_dim), np.float32)
    if name == "random":
        return None
    if not Path(name).is_file():
        raise FileNotFoundError(f"policy {name!r}: expected 'still', 'random' or the path of an SB3 policy.zip")
    from stable_baselines3 import PPO

    agent = PPO.load(name, device="cpu")
    return lambda observations: agent.predict(observations, deterministic=True)[0]


def closed_loop(policy, args: Args, world: str, probe, seed: int, starts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One episode per env of ``world`` under ``policy``: per step (N, T) rewards, (N, T, A)
    actions and (N, T, d) probe readings of the frame each step produced, and the (N, H, W, 3)
    first frames. ``starts``: first frames for the dream, each held for ``args.context`` frames."""
    ppo_args = PPOArgs(scene="reacher", world=world, checkpoint=args.checkpoint, stack=args.stack, **dream_kwargs(args))
    venv = observed(frames_env(ppo_args, world, args.episodes, seed), "probe", probe, args.stack)
    if starts is not None:
        held = np.repeat(starts[:, None], args.context, axis=1)
        venv.set_options({"context_frames": held, "context_actions": np.zeros((*held.shape[:2], 2), np.float32)})
    outputs = venv.observation_space.shape[0] // args.stack
    rng = np.random.default_rng(seed)
    low, high = venv.action_space.low, venv.action_space.high
    observations = venv.reset()
    first_frames = frames_of(venv, observations).copy()
    rewards, actions, readings, running = [], [], [], np.ones(args.episodes, bool)
    while running.any():
        action = rng.uniform(low, high, (args.episodes, *low.shape)).astype(np.float32) if policy is None else policy(observations)
        observations, reward, dones, infos = venv.step(action)
        # A finished env's observation is already its next episode's; the frame the step made is the terminal one.
        produced = np.stack([info["terminal_observation"] if done else observation
                             for observation, done, info in zip(observations, dones, infos)])[:, -outputs:]
        rewards.append(reward * running)
        actions.append(np.asarray(action, np.float32) * running[:, None])
        readings.append(produced)
        running &= ~dones
    venv.close()
    return {"rewards": np.stack(rewards, 1), "actions": np.stack(actions, 1), "readings": np.stack(readings, 1),
            "first_frames": first_frames}


def parts(episode: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-step (N, T) reward parts; all episodes of the reacher have the same length."""
    from worldenv.probe import probe_readings

    reading = probe_readings("reacher", episode["readings"])
    control = -np.square(episode["actions"]).sum(-1)
    distance = -np.linalg.norm(reading["fingertip"] - reading["target"], axis=-1)
    return {"return": episode["rewards"], "control": control, "distance_seen": distance,
            "head_residual": episode["rewards"] - control - distance,
            "target_moved": np.linalg.norm(reading["target"] - reading["target"][:, :1], axis=-1)}


def summarize(per_step: dict[str, np.ndarray]) -> dict:
    """Episode sums of the reward parts (mean and spread over episodes), the target's drift
    in the frames by the last step, and the per-step means for the plot."""
    sums = {name: per_step[name].sum(1) for name in PARTS}
    return {**{name: float(value.mean()) for name, value in sums.items()},
            **{f"{name}_std": float(value.std()) for name, value in sums.items()},
            "target_moved_last": float(per_step["target_moved"][:, -1].mean()),
            "per_step": {name: per_step[name].mean(0).round(4).tolist() for name in (*PARTS, "target_moved")}}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ("return", "control", "distance_seen", "head_residual")
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), sharex=True)
    for (name, worlds), colour in zip(results.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        for world, style in (("mujoco", "-"), ("dream", "--")):
            for axis, part in zip(axes, panels):
                axis.plot(worlds[world]["per_step"][part], style, color=colour, label=f"{name} ({world})")
    for axis, part in zip(axes, panels):
        axis.set_title(f"{part} per step")
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def short_name(policy: str) -> str:
    """``still``, ``random``; ``RUN/policy.zip`` -> ``RUN``; ``DIR/NAME.policy.zip`` -> ``NAME``."""
    if policy in ("still", "random"):
        return policy
    path = Path(policy)
    return path.parent.name if path.name == "policy.zip" else path.name.removesuffix(".zip").removesuffix(".policy")


def run(args: Args) -> dict:
    import json

    from worldenv.checkpoint import load_bundle
    from worldenv.envs.dream import shipped_checkpoint
    from worldenv.probe import load_probe

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    probe = load_probe(load_bundle(args.checkpoint or shipped_checkpoint("reacher")))
    results = {}
    for name in args.policies:
        policy = policy_from(name, action_dim=2)
        real = closed_loop(policy, args, "mujoco", probe, args.seed)
        dreamed = closed_loop(policy, args, "dream", probe, args.seed, real["first_frames"] if args.paired else None)
        results[short_name(name)] = {"mujoco": summarize(parts(real)), "dream": summarize(parts(dreamed))}
    plot(results, out / "per_step.png")
    summary = {"args": vars(args), "policies": results}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = {name: {world: {part: round(r[world][part], 2) for part in (*PARTS, "target_moved_last")}
                    for world in r} for name, r in results.items()}
    return {"args": vars(args), "policies": table}


if __name__ == "__main__":
    exit_with(Args, run, __doc__)
