"""PPO trained in the dream, scored in MuJoCo.

stable-baselines3 PPO learns in the batched dream (``DreamVecEnv``), and every
``--eval-every`` env steps it is scored in the MuJoCo scene the dream imitates,
with the same spaces, and on the same number of episodes in the dream: the real
return beside the return the dream predicts for the same deterministic policy
(the gap is how much the policy exploits the model), and the return of the
stochastic training episodes. ``--world mujoco`` trains the same PPO in MuJoCo
for the same env-step budget, ``--world random`` scores a uniform random policy
and ``--world still`` zero actions (a reacher arm that never moves): the
baselines, from the same script.

``--dream-steps H`` ends each training dream after H steps (truncated: PPO bootstraps
from its value there), and ``--start-contexts N --start-within W [--start-policy P]``
starts them from N real MuJoCo windows that begin anywhere in the first W steps of
episodes of the exploration policy P: short imagined episodes from the states a real
episode passes through, as DIAMOND and Dreamer imagine 15 steps from their replay
buffer's states, so the policy leans on the dream only as far as it stays right.
Scores in the dream still run whole episodes from the bundle's bank.

The policy sees frames, through ``--observation`` (``observations.py``): ``probe``
(default), the task state the bundle's frozen state probe reads off the last
``--stack`` frames; or ``pixels``, the frame itself (``CnnPolicy``).

    python agents/ppo_dream.py --scene reacher --world dream --env-steps 100000 --seed 0

Writes ``OUT/<scene>-<world>-seed<seed>/``: ``metrics.jsonl`` (one line per
evaluation), ``summary.json``, ``policy.zip`` and ``real_episode.mp4`` (the final
policy acting in MuJoCo, the dream following the same actions from the same
start: dream | MuJoCo | difference).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3.common.vec_env import VecEnv, VecMonitor  # noqa: E402

from agents.common import RunLog, ScoreEvery, ServingArgs, exit_with  # noqa: E402
from agents.observations import Observation, frames_of, observed, policy_kind  # noqa: E402
from worldenv.dream_config import StartPolicy  # noqa: E402


@dataclass
class Args(ServingArgs):
    scene: str = field(default="reacher", metadata={"help": "scene: reacher, cartpole, panorama or duo"})
    world: Literal["dream", "mujoco", "random", "still"] = field(
        default="dream", metadata={"help": "where PPO trains; random / still: no training, scores uniform random / zero actions"}
    )
    checkpoint: str | None = field(
        default=None, metadata={"help": "dream bundle (and its probe); unset: the scene's shipped one"}
    )
    observation: Observation = field(
        default="probe", metadata={"help": "what the policy sees: probe (the state read off the frames) or pixels"}
    )
    stack: int = field(default=2, metadata={"help": "probe readings of the last frames side by side (velocities)"})
    dream_steps: int | None = field(
        default=None,
        metadata={
            "help": "steps per training episode in the dream before it is truncated and PPO bootstraps from its value (an "
            "imagination horizon); unset: the scene's episode length"
        },
    )
    start_contexts: int | None = field(
        default=None,
        metadata={"help": "training dreams start from this many real windows recorded in MuJoCo; unset: the bundle's bank"},
    )
    start_within: int = field(
        default=0,
        metadata={"help": "with --start-contexts: each window begins at a step drawn from the first this-many of its episode"},
    )
    start_policy: StartPolicy = field(
        default="mix",
        metadata={"help": "with --start-contexts: the exploration policy whose episodes the windows come from (mix, roam, ...)"},
    )
    env_steps: int = field(default=100_000, metadata={"help": "training budget in env steps (all envs together)"})
    num_envs: int = field(default=16, metadata={"help": "parallel envs (one batched dream, or MuJoCo envs in one process)"})
    n_steps: int = field(default=128, metadata={"help": "PPO rollout length per env and update"})
    batch_size: int = field(default=256, metadata={"help": "PPO minibatch size"})
    n_epochs: int = field(default=10, metadata={"help": "PPO epochs per update"})
    learning_rate: float = field(default=3e-4, metadata={"help": "PPO learning rate"})
    gamma: float = field(default=0.99, metadata={"help": "discount"})
    eval_every: int = field(default=20_000, metadata={"help": "env steps between scores in MuJoCo"})
    eval_episodes: int = field(default=10, metadata={"help": "MuJoCo episodes per score"})
    seed: int = field(default=0, metadata={"help": "seed of PPO, the envs and the scoring episodes"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    video: bool = field(default=True, metadata={"help": "write the final policy's real episode beside the dream"})
    out: str = field(default="runs/agents", metadata={"help": "output directory"})


def frames_env(args: Args, world: str, num_envs: int, seed: int, training: bool = False) -> VecEnv:
    """``num_envs`` episodes of ``world`` (dream or mujoco) as an SB3 VecEnv of frames; env i
    resets with seed ``seed + i``. ``training``: the dream PPO learns in, with ``--dream-steps``
    and ``--start-*``; otherwise whole episodes from the bundle's bank, as scored."""
    from stable_baselines3.common.env_util import make_vec_env

    from worldenv.envs.sb3 import DreamVecEnv
    from worldenv.scenes import scene_info

    if world == "dream":
        # Training dreams may start from a bank recorded in MuJoCo when the env is made (DreamConfig.start_contexts).
        starts = (
            {"start_contexts": args.start_contexts, "start_within": args.start_within, "start_policy": args.start_policy}
            if training
            else {}
        )
        limit = args.dream_steps if training and args.dream_steps is not None else scene_info(args.scene).max_episode_steps
        venv = VecMonitor(
            DreamVecEnv(
                num_envs,
                scene=args.scene,
                checkpoint=args.checkpoint,
                max_episode_steps=limit,
                config=args.dream_config(**starts),
            )
        )
        venv.seed(seed)
        return venv
    return make_vec_env(scene_info(args.scene).env_id, n_envs=num_envs, seed=seed)  # Monitor per env


def episode_returns(policy, args: Args, world: str, probe, episodes: int, seed: int) -> np.ndarray:
    """Undiscounted return of one episode per env of ``world`` under ``policy`` (observations ->
    actions; None: uniform random). The same seeds in the dream and in MuJoCo: the dream starts
    from its own bank of real contexts, MuJoCo from its reset."""
    venv = observed(frames_env(args, world, episodes, seed), args.observation, probe, args.stack)
    rng = np.random.default_rng(seed)
    low, high = venv.action_space.low, venv.action_space.high
    observations = venv.reset()
    totals, running = np.zeros(episodes), np.ones(episodes, bool)
    while running.any():
        actions = rng.uniform(low, high, (episodes, *low.shape)).astype(np.float32) if policy is None else policy(observations)
        observations, rewards, dones, _ = venv.step(actions)
        totals += rewards * running
        running &= ~dones
    venv.close()
    return totals


def training_return(agent) -> float | None:
    """Mean return of the last finished training episodes (stochastic actions, in the training world)."""
    buffer = [info["r"] for info in agent.ep_info_buffer]
    return float(np.mean(buffer)) if buffer else None


def write_real_episode(agent, args: Args, probe, path: Path) -> None:
    """The policy acts in MuJoCo on the real frames; the dream, primed on the first real
    frames, receives the same actions: dream | MuJoCo | difference."""
    from worldenv.envs.single import DiffusionWorldEnv
    from worldenv.eval.record import PairedRollout, write_side_by_side

    context = 4
    truth = observed(frames_env(args, "mujoco", 1, args.seed + 10_000), args.observation, probe, args.stack)
    fps = truth.get_attr("metadata")[0]["render_fps"]
    observation, real, actions, done = truth.reset(), [], [], False
    while not done:
        real.append(frames_of(truth, observation)[0])
        action = agent.predict(observation, deterministic=True)[0]
        observation, _, dones, _ = truth.step(action)
        actions.append(np.asarray(action[0], np.float32))
        done = bool(dones[0])  # the observation after a done is the next episode's: not kept
    truth.close()
    dream = DiffusionWorldEnv(scene=args.scene, checkpoint=args.checkpoint, config=args.dream_config())
    zero = np.zeros_like(actions[0])
    frame, _ = dream.reset(
        seed=args.seed,
        options={"context_frames": np.stack(real[:context]), "context_actions": np.stack([zero, *actions[: context - 1]])},
    )
    dreamed = list(real[:context])
    for action in actions[context - 1 : len(real) - 1]:
        frame, *_ = dream.step(action)
        dreamed.append(frame)
    dream.close()
    rollout = PairedRollout(
        np.stack(dreamed), np.stack(real), np.stack(actions[context - 1 : len(real) - 1]), context, 0.0, 0.0, fps
    )
    write_side_by_side(rollout, path)


def run(args: Args) -> dict:
    from stable_baselines3 import PPO

    from worldenv.checkpoint import load_bundle, shipped_checkpoint
    from worldenv.eval.probe import load_probe

    if args.world != "dream" and (
        args.dream_steps is not None or args.start_contexts is not None or args.start_within or args.start_policy != "mix"
    ):
        raise ValueError(f"--dream-steps and --start-* shape the dream's training episodes; --world {args.world} has none")
    torch.set_num_threads(args.threads)
    log = RunLog(Path(args.out) / f"{args.scene}-{args.world}-seed{args.seed}")
    probe = None if args.observation == "pixels" else load_probe(load_bundle(args.checkpoint or shipped_checkpoint(args.scene)))

    def record(env_steps: int, policy, train_return: float | None) -> dict:
        seed = 1_000_000 + args.seed * 1000
        real = episode_returns(policy, args, "mujoco", probe, args.eval_episodes, seed)
        dreamed = episode_returns(policy, args, "dream", probe, args.eval_episodes, seed)
        return log.record(
            {
                "env_steps": env_steps,
                "real_return": float(real.mean()),
                "real_return_std": float(real.std()),
                "dream_return": float(dreamed.mean()),
                "dream_return_std": float(dreamed.std()),
                "train_env_return": train_return,
            }
        )

    if args.world == "random":
        return log.summarize(args, record(0, None, None))
    if args.world == "still":
        from worldenv.scenes import scene_info

        action_shape = gym.make(scene_info(args.scene).env_id).action_space.shape
        return log.summarize(args, record(0, lambda observations: np.zeros((len(observations), *action_shape), np.float32), None))
    venv = observed(frames_env(args, args.world, args.num_envs, args.seed, training=True), args.observation, probe, args.stack)
    agent = PPO(
        policy_kind(args.observation),
        venv,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )

    def act(observations):
        return agent.predict(observations, deterministic=True)[0]

    agent.learn(
        total_timesteps=args.env_steps,
        callback=ScoreEvery(args.eval_every, lambda steps: record(steps, act, training_return(agent))),
    )
    training_seconds = log.seconds()
    agent.save(log.out / "policy.zip")
    last = record(agent.num_timesteps, act, training_return(agent))
    last["train_env_steps_per_s"] = agent.num_timesteps / training_seconds
    if args.video:
        write_real_episode(agent, args, probe, log.out / "real_episode.mp4")
    return log.summarize(args, last)


if __name__ == "__main__":
    exit_with(Args, run, __doc__)
