"""Does the dream predict what MuJoCo does on the states a policy visits?

A policy acts closed loop in MuJoCo (through the probe readings it was trained on) for
``--episodes`` episodes. Every ``--every`` steps of each episode, a dream is primed with
the last ``--context`` real frames, the actions that led to them and the actions before
them, and follows the real actions for ``--horizon`` steps, open loop. The bundle's state
probe reads both worlds' frames. Per quantity, the script reports the mean error at the
horizon and the *carry*: the least-squares factor from MuJoCo's change over the horizon
to the dream's (1: the dream moves as MuJoCo does from that state; 0: it stands still).

Where ``return_audit.py`` shows that a policy's two worlds part, this shows why, on the
policy's own states: on the cartpole, a carry near 0 on ``cart_x`` means the dream
loses the cart's velocity, so a policy trained there never sees its cart drift to the
rail's end, which is how the dream-trained policies fail in MuJoCo.

    python agents/policy_replay.py --scene cartpole --policy runs/agents/cartpole-mujoco-seed0/policy.zip
"""

import os
from dataclasses import dataclass, field
from typing import Literal

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.common import ServingArgs, exit_with  # noqa: E402
from agents.observations import frames_of, observed  # noqa: E402
from agents.ppo_dream import Args as PPOArgs  # noqa: E402
from agents.ppo_dream import frames_env  # noqa: E402
from agents.return_audit import policy_from  # noqa: E402


@dataclass
class Args(ServingArgs):
    scene: Literal["reacher", "cartpole"] = field(default="cartpole", metadata={"help": "scene"})
    policy: str = field(
        default="still", metadata={"help": "still, random, or the path of an SB3 policy.zip trained on probe readings"}
    )
    checkpoint: str | None = field(
        default=None, metadata={"help": "dream bundle (and its probe); unset: the scene's shipped one"}
    )
    stack: int = field(default=2, metadata={"help": "probe readings side by side, as the policy was trained"})
    episodes: int = field(default=10, metadata={"help": "real episodes of the policy"})
    max_steps: int = field(default=300, metadata={"help": "steps kept of each real episode"})
    context: int = field(default=4, metadata={"help": "real frames that prime each replay"})
    history: int = field(
        default=16, metadata={"help": "actions before the context a replay passes (for models conditioned on them)"}
    )
    horizon: int = field(default=10, metadata={"help": "dreamed steps per replay"})
    every: int = field(default=10, metadata={"help": "steps between replay starts"})
    seed: int = field(default=1_000_000, metadata={"help": "first episode seed; also the replays' noise seeds"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    json: str | None = field(default=None, metadata={"help": "write the result here"})


def real_episodes(args: Args, probe) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per episode, the frames (T + 1, H, W, 3) from the reset on, and the actions (T, A):
    action t turned frame t into frame t + 1. The terminal frame is not kept."""
    ppo_args = PPOArgs(scene=args.scene, world="mujoco", checkpoint=args.checkpoint, stack=args.stack)
    venv = observed(frames_env(ppo_args, "mujoco", args.episodes, args.seed), "probe", probe, args.stack)
    low, high = venv.action_space.low, venv.action_space.high
    policy, rng = policy_from(args.policy, low.shape[0]), np.random.default_rng(args.seed)
    observations = venv.reset()
    frames, actions = [[frame] for frame in frames_of(venv, observations).copy()], [[] for _ in range(args.episodes)]
    running = np.ones(args.episodes, bool)
    for _ in range(args.max_steps):
        action = (
            rng.uniform(low, high, (args.episodes, *low.shape)).astype(np.float32) if policy is None else policy(observations)
        )
        observations, _, dones, _ = venv.step(action)
        produced = frames_of(venv, observations)
        for env in np.flatnonzero(running & ~dones):
            frames[env].append(produced[env].copy())
            actions[env].append(np.asarray(action[env], np.float32))
        running &= ~dones
        if not running.any():
            break
    venv.close()
    return [(np.stack(f[: len(a) + 1]), np.stack(a).reshape(len(a), *low.shape)) for f, a in zip(frames, actions) if a]


def replay_starts(episodes: list[tuple[np.ndarray, np.ndarray]], args: Args) -> list[tuple[int, int]]:
    """(episode, t): a replay primed with frames t - context + 1 .. t, dreaming t + 1 .. t + horizon."""
    return [
        (e, t) for e, (frames, _) in enumerate(episodes) for t in range(args.context - 1, len(frames) - args.horizon, args.every)
    ]


def padded(actions: np.ndarray, first: int, last: int) -> np.ndarray:
    """actions[first:last], zeros in front where first < 0 (before the episode began)."""
    before = min(last - first, max(0, -first))
    return np.concatenate([np.zeros((before, *actions.shape[1:]), np.float32), actions[max(0, first) : max(0, last)]])


def replays(args: Args, episodes, starts) -> np.ndarray:
    """The dreamed frames (R, horizon, H, W, 3) of every replay, in one batch."""
    from worldenv.envs.dream import Dream

    dream = Dream.load(len(starts), args.dream_config(), scene=args.scene, checkpoint=args.checkpoint)
    c = args.context
    # Frame i was made by action i - 1; the reset frame by none (zero), as in training.
    frames = np.stack([episodes[e][0][t - c + 1 : t + 1] for e, t in starts])
    context_actions = np.stack([padded(episodes[e][1], t - c, t) for e, t in starts])
    past = np.stack([padded(episodes[e][1], t - c - args.history, t - c) for e, t in starts])
    dream.model.reset(frames, context_actions, torch.arange(len(starts)) + args.seed, past_actions=past)
    dreamed = []
    for k in range(args.horizon):
        step_actions = np.stack([episodes[e][1][t + k] for e, t in starts])
        dreamed.append(dream.model.step(step_actions)[0].cpu().numpy())
    return np.stack(dreamed, 1)


def wrapped_change(name: str, change: np.ndarray) -> np.ndarray:
    """Angles' changes the short way round."""
    return (change + np.pi) % (2 * np.pi) - np.pi if name.endswith("angle") or name == "joint_angles" else change


def carry(start: dict, real: dict, dreamed: dict) -> dict[str, dict[str, float]]:
    """Per quantity: the mean absolute error at the horizon, the mean absolute real change,
    and the least-squares factor from the real change to the dream's."""
    result = {}
    for name in real:
        real_change, dream_change = (wrapped_change(name, world[name] - start[name]) for world in (real, dreamed))
        error = dream_change - real_change
        result[name] = {
            "error": round(float(np.abs(error).mean()), 4),
            "real_change": round(float(np.abs(real_change).mean()), 4),
            "carry": round(float((dream_change * real_change).sum() / max((real_change**2).sum(), 1e-12)), 3),
        }
    return result


def run(args: Args) -> dict:
    import json
    from pathlib import Path

    from worldenv.checkpoint import load_bundle, shipped_checkpoint
    from worldenv.eval.probe import load_probe, probe_readings

    if args.context < 1 or args.horizon < 1 or args.every < 1:
        raise ValueError(
            f"expected --context, --horizon and --every of at least 1, got {args.context}, {args.horizon}, {args.every}"
        )
    torch.set_num_threads(args.threads)
    probe = load_probe(load_bundle(args.checkpoint or shipped_checkpoint(args.scene)))
    episodes = real_episodes(args, probe)
    starts = replay_starts(episodes, args)
    if not starts:
        raise SystemExit(
            f"no replay fits: every real episode is shorter than --context + --horizon ({args.context + args.horizon})"
        )
    dreamed = replays(args, episodes, starts)

    def read(frames: np.ndarray) -> dict[str, np.ndarray]:
        return probe_readings(args.scene, probe.predict(frames))

    start = read(np.stack([episodes[e][0][t] for e, t in starts]))
    real = read(np.stack([episodes[e][0][t + args.horizon] for e, t in starts]))
    summary = {
        "replays": len(starts),
        "episode_lengths": [len(actions) for _, actions in episodes],
        "quantities": carry(start, real, read(dreamed[:, -1])),
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), **summary}, indent=2))
    return {"args": vars(args), **summary}


if __name__ == "__main__":
    exit_with(Args, run, __doc__)
