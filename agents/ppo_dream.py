"""PPO trained in the dream, scored in MuJoCo.

stable-baselines3 PPO (CnnPolicy on the 64x64 frames) learns in the batched dream
(``DreamVecEnv``), and every ``--eval-every`` env steps it is scored in the MuJoCo
scene the dream imitates, with the same spaces, and on the same number of
episodes in the dream: the real return beside the return the dream predicts for
the same deterministic policy (the gap is how much the policy exploits the
model), and the return of the stochastic training episodes. ``--world mujoco``
trains the same PPO in MuJoCo for the same env-step budget, ``--world random``
scores a uniform random policy and ``--world still`` zero actions (a reacher arm
that never moves): the baselines, from the same script.

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

from common import RunLog, ScoreEvery, exit_with  # noqa: E402


@dataclass
class Args:
    scene: str = field(default="reacher", metadata={"help": "scene: reacher, cartpole, panorama or duo"})
    world: Literal["dream", "mujoco", "random", "still"] = field(
        default="dream", metadata={"help": "where PPO trains; random / still: no training, scores uniform random / zero actions"})
    checkpoint: str | None = field(default=None, metadata={"help": "dream bundle; unset: the scene's shipped one"})
    model: str | None = field(default=None, metadata={"help": "bundle component that dreams; unset: the bundle's serving choice"})
    sampling_steps: int | None = field(default=None, metadata={"help": "network evaluations per dreamed frame"})
    env_steps: int = field(default=100_000, metadata={"help": "training budget in env steps (all envs together)"})
    num_envs: int = field(default=16, metadata={"help": "parallel envs (one batched dream, or MuJoCo envs in one process)"})
    n_steps: int = field(default=128, metadata={"help": "PPO rollout length per env and update"})
    eval_every: int = field(default=20_000, metadata={"help": "env steps between scores in MuJoCo"})
    eval_episodes: int = field(default=10, metadata={"help": "MuJoCo episodes per score"})
    seed: int = field(default=0, metadata={"help": "seed of PPO, the envs and the scoring episodes"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    video: bool = field(default=True, metadata={"help": "write the final policy's real episode beside the dream"})
    out: str = field(default="runs/agents", metadata={"help": "output directory"})


def training_env(args: Args):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecMonitor

    from worldenv.envs.sb3 import DreamVecEnv
    from worldenv.scenes import scene_info

    if args.world == "dream":
        venv = DreamVecEnv(args.num_envs, scene=args.scene, checkpoint=args.checkpoint, model=args.model,
                           sampling_steps=args.sampling_steps, max_episode_steps=scene_info(args.scene).max_episode_steps)
        return VecMonitor(venv)
    return make_vec_env(scene_info(args.scene).env_id, n_envs=args.num_envs, seed=args.seed)  # Monitor per env


def real_returns(policy, args: Args, episodes: int, seed: int) -> np.ndarray:
    """Undiscounted returns of ``policy`` (frame -> action, or None for uniform random) in MuJoCo."""
    from worldenv.scenes import scene_info

    env = gym.make(scene_info(args.scene).env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action = env.action_space.sample() if policy is None else policy(observation)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return np.array(returns)


def dream_returns(policy, args: Args, episodes: int, seed: int) -> np.ndarray:
    """The same scoring in the dream (one batched dream, one episode per env): what the
    model predicts ``policy`` earns. Beside ``real_returns`` it shows model exploitation."""
    from gymnasium.vector import AutoresetMode

    from worldenv.envs.vector import DiffusionWorldVectorEnv
    from worldenv.scenes import scene_info

    envs = DiffusionWorldVectorEnv(episodes, scene=args.scene, checkpoint=args.checkpoint, model=args.model,
                                   sampling_steps=args.sampling_steps, autoreset_mode=AutoresetMode.DISABLED,
                                   max_episode_steps=scene_info(args.scene).max_episode_steps)
    envs.action_space.seed(seed)
    observations, _ = envs.reset(seed=seed)
    totals, running = np.zeros(episodes), np.ones(episodes, bool)
    while running.any():
        actions = envs.action_space.sample() if policy is None else policy(observations)
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        totals += rewards * running
        running &= ~(terminated | truncated)
    envs.close()
    return totals


def training_return(agent) -> float | None:
    """Mean return of the last finished training episodes (stochastic actions, in the training world)."""
    buffer = [info["r"] for info in agent.ep_info_buffer]
    return float(np.mean(buffer)) if buffer else None


def write_real_episode(agent, args: Args, path: Path) -> None:
    """The policy acts in MuJoCo on the real frames; the dream, primed on the first real
    frames, receives the same actions: dream | MuJoCo | difference."""
    from worldenv.envs.single import DiffusionWorldEnv
    from worldenv.record import PairedRollout, write_side_by_side
    from worldenv.scenes import scene_info

    context = 4
    truth = gym.make(scene_info(args.scene).env_id)
    fps = truth.metadata["render_fps"]
    frame, _ = truth.reset(seed=args.seed + 10_000)
    real, actions, done = [frame], [], False
    while not done:
        action = np.asarray(agent.predict(frame, deterministic=True)[0], np.float32)
        frame, _, terminated, truncated, _ = truth.step(action)
        real.append(frame)
        actions.append(action)
        done = terminated or truncated
    truth.close()
    dream = DiffusionWorldEnv(scene=args.scene, checkpoint=args.checkpoint, model=args.model,
                              sampling_steps=args.sampling_steps)
    zero = np.zeros_like(actions[0])
    observation, _ = dream.reset(seed=args.seed, options={"context_frames": np.stack(real[:context]),
                                                          "context_actions": np.stack([zero, *actions[: context - 1]])})
    dreamed = list(real[:context])
    for action in actions[context - 1 :]:
        observation, *_ = dream.step(action)
        dreamed.append(observation)
    dream.close()
    rollout = PairedRollout(np.stack(dreamed), np.stack(real), np.stack(actions[context - 1 :]), context, 0.0, 0.0, fps)
    write_side_by_side(rollout, path)


def run(args: Args) -> dict:
    from stable_baselines3 import PPO

    import worldenv  # noqa: F401  registers the envs

    torch.set_num_threads(args.threads)
    log = RunLog(Path(args.out) / f"{args.scene}-{args.world}-seed{args.seed}")

    def record(env_steps: int, policy, train_return: float | None) -> dict:
        seed = 1_000_000 + args.seed * 1000
        real, dreamed = real_returns(policy, args, args.eval_episodes, seed), dream_returns(policy, args, args.eval_episodes, seed)
        return log.record({"env_steps": env_steps, "real_return": float(real.mean()), "real_return_std": float(real.std()),
                           "dream_return": float(dreamed.mean()), "dream_return_std": float(dreamed.std()),
                           "train_env_return": train_return})

    if args.world == "random":
        return log.summarize(args, record(0, None, None))
    if args.world == "still":
        from worldenv.scenes import scene_info

        action_shape = gym.make(scene_info(args.scene).env_id).action_space.shape
        return log.summarize(args, record(0, lambda frames: np.zeros((*frames.shape[:-3], *action_shape), np.float32), None))
    venv = training_env(args)
    agent = PPO("CnnPolicy", venv, n_steps=args.n_steps, batch_size=256, n_epochs=4, learning_rate=3e-4,
                seed=args.seed, device="cpu", verbose=0)

    def act(observation):
        return agent.predict(observation, deterministic=True)[0]

    agent.learn(total_timesteps=args.env_steps,
                callback=ScoreEvery(args.eval_every, lambda steps: record(steps, act, training_return(agent))))
    training_seconds = log.seconds()
    agent.save(log.out / "policy.zip")
    last = record(agent.num_timesteps, act, training_return(agent))
    last["train_env_steps_per_s"] = agent.num_timesteps / training_seconds
    if args.video:
        write_real_episode(agent, args, log.out / "real_episode.mp4")
    return log.summarize(args, last)


if __name__ == "__main__":
    exit_with(Args, run, __doc__)
