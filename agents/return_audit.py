"""Where a policy's dream return parts from its real return, from the same starts.

A policy that scores -7 in MuJoCo and -14 in the dream is judged wrongly by the dream,
and PPO in the dream learns from that judgement. Each world's return splits into parts
that can be checked one by one, per scene:

- reacher (reward ``-|fingertip - target| - |action|^2`` after the step):
  ``control``, ``-sum |action|^2``, exact in both worlds (a policy that pushes harder in
  the dream pays more there); ``distance_seen``, ``-sum |fingertip - target|`` as the
  bundle's state probe reads it off the world's own frames (does the arm get to the
  target in that world); ``head_residual``, the rest: in the dream, how far the reward
  head's reward is from the reward of what the dream shows; in MuJoCo, the probe's own
  error on real frames (the floor).
- cartpole (reward 1 per step while the pole stands, the episode ends past
  ``FALL_ANGLE``): ``length``, the steps the world let the episode run;
  ``length_seen``, the steps until the world's own frames, read by the probe, first show
  the pole past the fall angle; ``ends_unseen = length - length_seen``, the termination
  head's residual (positive: the dream kept an episode going whose pole its frames showed
  fallen); ``cart_reach``, the farthest the frames show the cart from the rail's middle
  (the rail ends at 1 m: a cart that gets there drops the pole). The per-step traces
  (the pole angle, the cart, the action; the first episode as it went, and the mean over
  running episodes) show where the two worlds part.

Each policy (``still``, ``random``, or an SB3 ``policy.zip`` from ``ppo_dream.py``)
acts closed loop in both worlds, through the same probe observations it was trained
on, from the same starts: each dream is primed with its MuJoCo episode's first frame,
held for ``--context`` frames (the scene starts at rest), so the two worlds begin alike
(``--no-paired``: the dream starts from its bank of contexts, as in training). The
episode sums and per-step means go to ``summary.json`` and a plot to ``per_step.png``.

    python agents/return_audit.py --policies still runs/agents/reacher-mujoco-seed0/policy.zip
    python agents/return_audit.py --scene cartpole --policies still runs/agents/cartpole-mujoco-seed0/policy.zip
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.common import ServingArgs, exit_with  # noqa: E402
from agents.observations import frames_of, observed  # noqa: E402
from agents.ppo_dream import Args as PPOArgs  # noqa: E402
from agents.ppo_dream import frames_env  # noqa: E402


@dataclass
class Args(ServingArgs):
    scene: Literal["reacher", "cartpole"] = field(default="reacher", metadata={"help": "scene whose return is split"})
    policies: list[str] = field(
        default_factory=lambda: ["still", "random"],
        metadata={"help": "still, random, or paths of SB3 policy.zip files trained on probe readings"},
    )
    checkpoint: str | None = field(
        default=None, metadata={"help": "dream bundle (and its probe); unset: the scene's shipped one"}
    )
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
    actions, (N, T, d) probe readings of the frame each step produced and (N, T) ``running``
    (the step belongs to the env's episode), and the (N, H, W, 3) first frames. ``starts``:
    first frames for the dream, each held for ``args.context`` frames."""
    ppo_args = PPOArgs(scene=args.scene, world=world, checkpoint=args.checkpoint, stack=args.stack, **args.serving_args())
    venv = observed(frames_env(ppo_args, world, args.episodes, seed), "probe", probe, args.stack)
    low, high = venv.action_space.low, venv.action_space.high
    if starts is not None:
        held = np.repeat(starts[:, None], args.context, axis=1)
        venv.set_options({"context_frames": held, "context_actions": np.zeros((*held.shape[:2], *low.shape), np.float32)})
    outputs = venv.observation_space.shape[0] // args.stack
    rng = np.random.default_rng(seed)
    observations = venv.reset()
    first_frames = frames_of(venv, observations).copy()
    rewards, actions, readings, steps_running, running = [], [], [], [], np.ones(args.episodes, bool)
    while running.any():
        action = (
            rng.uniform(low, high, (args.episodes, *low.shape)).astype(np.float32) if policy is None else policy(observations)
        )
        observations, reward, dones, infos = venv.step(action)
        # A finished env's observation is already its next episode's; the frame the step made is the terminal one.
        produced = np.stack(
            [info["terminal_observation"] if done else observation for observation, done, info in zip(observations, dones, infos)]
        )[:, -outputs:]
        rewards.append(reward * running)
        actions.append(np.asarray(action, np.float32) * running[:, None])
        readings.append(produced)
        steps_running.append(running.copy())
        running &= ~dones
    venv.close()
    return {
        "rewards": np.stack(rewards, 1),
        "actions": np.stack(actions, 1),
        "readings": np.stack(readings, 1),
        "running": np.stack(steps_running, 1),
        "first_frames": first_frames,
    }


def reacher_parts(episode: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-episode (N,) reward parts and per-step (N, T) quantities; every reacher episode
    has the same length."""
    from worldenv.eval.probe import probe_readings

    reading = probe_readings("reacher", episode["readings"])
    per_step = {
        "return": episode["rewards"],
        "control": -np.square(episode["actions"]).sum(-1),
        "distance_seen": -np.linalg.norm(reading["fingertip"] - reading["target"], axis=-1),
    }
    per_step["head_residual"] = per_step["return"] - per_step["control"] - per_step["distance_seen"]
    per_step["target_moved"] = np.linalg.norm(reading["target"] - reading["target"][:, :1], axis=-1)
    per_episode = {name: per_step[name].sum(1) for name in ("return", "control", "distance_seen", "head_residual")}
    per_episode["target_moved_last"] = per_step["target_moved"][:, -1]
    return per_episode, per_step


def cartpole_parts(episode: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-episode (N,) length and when the world's own frames show the fall, and per-step
    (N, T) pole angle, cart position and action (NaN once an episode has ended)."""
    from worldenv.eval.probe import probe_readings
    from worldenv.scenes.cartpole import FALL_ANGLE

    reading, running = probe_readings("cartpole", episode["readings"]), episode["running"]
    angle = reading["pole_angle"][..., 0]
    fallen = (np.abs(angle) > FALL_ANGLE) & running
    length = running.sum(1)
    length_seen = np.where(fallen.any(1), fallen.argmax(1) + 1, length)
    cart = reading["cart_x"][..., 0]
    per_episode = {
        "return": episode["rewards"].sum(1),
        "length": length,
        "length_seen": length_seen,
        "ends_unseen": length - length_seen,
        "cart_reach": np.where(running, np.abs(cart), 0.0).max(1),
    }
    per_step = {
        name: np.where(running, value, np.nan)
        for name, value in (("pole_angle", angle), ("cart_x", cart), ("action", episode["actions"][..., 0]))
    }
    per_step["running"] = running.astype(float)
    return per_episode, per_step


# Per scene: how a world's episodes split, the plot's panels (per-step means over running
# episodes), and the per-step traces of the first episode, drawn as it went.
SCENES = {
    "reacher": (reacher_parts, ("return", "control", "distance_seen", "head_residual"), ()),
    "cartpole": (cartpole_parts, ("running",), ("pole_angle", "cart_x", "action")),
}


def summarize(per_episode: dict[str, np.ndarray], per_step: dict[str, np.ndarray]) -> dict:
    """Mean and spread over episodes of each episode-level part, the per-step means over the
    episodes still running, and the first episode's per-step values."""
    steps = per_step[next(iter(per_step))].shape[1]
    means = {
        name: np.array([np.nanmean(column) if np.isfinite(column).any() else np.nan for column in value.T])
        for name, value in per_step.items()
    }
    return {
        **{name: float(value.mean()) for name, value in per_episode.items()},
        **{f"{name}_std": float(value.std()) for name, value in per_episode.items()},
        "steps": steps,
        "per_step": {name: [None if np.isnan(v) else round(float(v), 4) for v in value] for name, value in means.items()},
        "first_episode": {
            name: [None if np.isnan(v) else round(float(v), 4) for v in value[0]] for name, value in per_step.items()
        },
    }


def plot(results: dict, scene: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, means, traces = SCENES[scene]
    panels = [(name, "per_step", f"{name} per step") for name in means] + [
        (name, "first_episode", f"{name}, first episode") for name in traces
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), sharex=True)
    for (name, worlds), colour in zip(results.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        for world, style in (("mujoco", "-"), ("dream", "--")):
            for axis, (part, kind, _) in zip(axes, panels):
                values = [np.nan if v is None else v for v in worlds[world][kind][part]]
                axis.plot(values, style, color=colour, label=f"{name} ({world})")
    for axis, (_, _, title) in zip(axes, panels):
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def short_names(policies: list[str]) -> list[str]:
    """``still``, ``random``; ``RUN/policy.zip`` -> ``RUN``; ``DIR/NAME.policy.zip`` -> ``NAME``;
    a name that two policies would share gets its folder in front (``OUT/RUN``)."""

    def name(policy: str, parts: int) -> str:
        if policy in ("still", "random"):
            return policy
        path = Path(policy)
        if path.name == "policy.zip":
            path = path.parent
        else:
            path = path.with_name(path.name.removesuffix(".zip").removesuffix(".policy"))
        return "/".join(path.parts[-parts:])

    names = [name(policy, 1) for policy in policies]
    return [name(policy, 2) if names.count(short) > 1 else short for policy, short in zip(policies, names)]


def run(args: Args) -> dict:
    import json

    import gymnasium as gym

    from worldenv.checkpoint import load_bundle, shipped_checkpoint
    from worldenv.eval.probe import load_probe
    from worldenv.scenes import scene_info

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    probe = load_probe(load_bundle(args.checkpoint or shipped_checkpoint(args.scene)))
    split = SCENES[args.scene][0]
    action_dim = gym.make(scene_info(args.scene).env_id).action_space.shape[0]
    results = {}
    for name, short in zip(args.policies, short_names(args.policies)):
        policy = policy_from(name, action_dim)
        real = closed_loop(policy, args, "mujoco", probe, args.seed)
        dreamed = closed_loop(policy, args, "dream", probe, args.seed, real["first_frames"] if args.paired else None)
        results[short] = {"mujoco": summarize(*split(real)), "dream": summarize(*split(dreamed))}
    plot(results, args.scene, out / "per_step.png")
    summary = {"args": vars(args), "policies": results}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = {
        name: {world: {part: round(value, 2) for part, value in r[world].items() if isinstance(value, float)} for world in r}
        for name, r in results.items()
    }
    return {"args": vars(args), "policies": table}


if __name__ == "__main__":
    exit_with(Args, run, __doc__)
