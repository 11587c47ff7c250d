"""Multi-agent PPO with parameter sharing on the duo dream, scored in the duo MuJoCo scene.

One SB3 PPO policy acts for both agents. Each agent is one env of the SB3 vector
env (``AgentsAsEnvs``): it sees the shared top-down frame, as the bundle's state
probe reads it (both agents and both targets, the last ``--stack`` readings;
``observations.py``) or as pixels, plus its identity (a last entry, or a fourth
channel, 0 for agent 0 and 1 or 255 for agent 1); it sends its half of the joint
action and receives its own reward (the dream's per-agent reward heads). Every
``--eval-every`` env steps the policy is scored through the PettingZoo API in MuJoCo
(``worldenv.scenes.duo.parallel_env``) and in the PettingZoo dream (``worldenv.envs.parallel_env``), the same episodes each.
``--world mujoco`` trains in MuJoCo instead; ``--world random`` scores random actions.

    python agents/ppo_duo.py --world dream --env-steps 100000 --seed 0
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402
from stable_baselines3.common.vec_env.base_vec_env import VecEnv  # noqa: E402

from agents.common import RunLog, ScoreEvery, ServingArgs, exit_with  # noqa: E402
from agents.observations import Observation, ProbeReadout, policy_kind  # noqa: E402

AGENTS = 2


@dataclass
class Args(ServingArgs):
    world: Literal["dream", "mujoco", "random"] = field(
        default="dream", metadata={"help": "where PPO trains (random: no training, the random-policy baseline)"}
    )
    checkpoint: str | None = field(default=None, metadata={"help": "duo dream bundle; unset: the shipped one"})
    start_contexts: int | None = field(
        default=None,
        metadata={
            "help": "real starts the training dream draws from, recorded in the MuJoCo scene when it is made; unset: the "
            "bundle's bank (32 for the duo: too few layouts to learn from)"
        },
    )
    observation: Observation = field(
        default="probe", metadata={"help": "what the policy sees: probe (the state read off the frames) or pixels"}
    )
    stack: int = field(default=2, metadata={"help": "probe readings of the last frames side by side (velocities)"})
    env_steps: int = field(default=100_000, metadata={"help": "training budget in joint env steps"})
    num_envs: int = field(default=8, metadata={"help": "joint envs (each gives two agent-envs to PPO)"})
    n_steps: int = field(default=128, metadata={"help": "PPO rollout length per agent-env and update"})
    eval_every: int = field(default=20_000, metadata={"help": "joint env steps between scores"})
    eval_episodes: int = field(default=5, metadata={"help": "episodes per score, in MuJoCo and in the dream"})
    max_cycles: int = field(default=200, metadata={"help": "steps per scored episode, and per training episode in MuJoCo"})
    dream_cycles: int | None = field(
        default=None,
        metadata={
            "help": "steps per training episode in the dream (an imagination horizon: a dream drifts over a few dozen "
            "frames, and a policy that learns on the drift learns nothing real); unset: max_cycles"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of PPO, the envs and the scoring episodes"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    out: str = field(default="runs/agents", metadata={"help": "output directory"})


def with_identity(observation: np.ndarray, agent: int) -> np.ndarray:
    """Frames (..., H, W, 3) uint8 -> (..., H, W, 4), a plane naming the agent (0 or 255);
    probe readings (..., d) float32 -> (..., d + 1), the agent's index last."""
    if observation.dtype == np.uint8:
        return np.concatenate([observation, np.full((*observation.shape[:-1], 1), 255 * agent, np.uint8)], axis=-1)
    return np.concatenate([observation, np.full((*observation.shape[:-1], 1), agent, np.float32)], axis=-1)


class AgentsAsEnvs(VecEnv):
    """A VecEnv of ``n`` joint duo envs seen as ``2n`` single-agent envs (agent-major
    within each joint env: rows 2i and 2i + 1 are the agents of joint env i)."""

    def __init__(self, joint: VecEnv):
        self.joint = joint
        self.render_mode = joint.render_mode
        shared = joint.observation_space
        if shared.dtype == np.uint8:
            observation_space = spaces.Box(0, 255, (*shared.shape[:-1], shared.shape[-1] + 1), np.uint8)
        else:
            observation_space = spaces.Box(-np.inf, np.inf, (shared.shape[0] + 1,), np.float32)
        per_agent = joint.action_space.shape[0] // AGENTS
        action_space = spaces.Box(joint.action_space.low[:per_agent], joint.action_space.high[:per_agent], dtype=np.float32)
        super().__init__(AGENTS * joint.num_envs, observation_space, action_space)
        self._actions = None

    def _split(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([with_identity(frames, agent) for agent in range(AGENTS)], axis=1).reshape(
            self.num_envs, *self.observation_space.shape
        )

    def reset(self):
        self.joint.seed(self._seeds[0])
        self._reset_seeds()
        return self._split(self.joint.reset())

    def step_async(self, actions):
        self._actions = np.asarray(actions).reshape(self.joint.num_envs, -1)  # each joint env's agents end to end

    def step_wait(self):
        frames, _, dones, infos = self.joint.step(self._actions)
        rewards = np.array([[info[f"reward_agent_{a}"] for a in range(AGENTS)] for info in infos], np.float32).reshape(-1)
        agent_infos = []
        for info in infos:
            for agent in range(AGENTS):
                entry = {"TimeLimit.truncated": info.get("TimeLimit.truncated", False)}
                if "terminal_observation" in info:
                    entry["terminal_observation"] = with_identity(info["terminal_observation"], agent)
                agent_infos.append(entry)
        return self._split(frames), rewards, np.repeat(dones, AGENTS), agent_infos

    def close(self):
        self.joint.close()

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name, value, indices=None):
        raise AttributeError("AgentsAsEnvs: set_attr is not supported")

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        raise AttributeError("AgentsAsEnvs: env_method is not supported")

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._get_indices(indices))

    def get_images(self):
        return self.joint.get_images()


def joint_env(args: Args) -> VecEnv:
    from stable_baselines3.common.env_util import make_vec_env

    from worldenv.envs.sb3 import DreamVecEnv

    if args.world == "dream":
        return DreamVecEnv(
            args.num_envs,
            scene="duo",
            checkpoint=args.checkpoint,
            max_episode_steps=args.max_cycles if args.dream_cycles is None else args.dream_cycles,
            config=args.dream_config(start_contexts=args.start_contexts),
        )
    return make_vec_env(
        "worldenv/Duo-v0", n_envs=args.num_envs, seed=args.seed, env_kwargs={"max_episode_steps": args.max_cycles}
    )


class Seer:
    """What the shared policy sees of one PettingZoo episode, agent by agent, as it saw in
    training: the probe's reading (or the frame) with the agent's identity, the last
    ``stack`` of them side by side as ``VecFrameStack`` lays them out (zeros before the first)."""

    def __init__(self, probe, stack: int):
        self.probe, self.stack = probe, stack
        self.history: dict[int, list[np.ndarray]] = {}

    def __call__(self, frame: np.ndarray, agent: int) -> np.ndarray:
        if self.probe is None:
            return with_identity(frame, agent)
        seen = with_identity(self.probe.predict(frame[None])[0].astype(np.float32), agent)
        history = self.history.get(agent) or [np.zeros_like(seen)] * self.stack
        self.history[agent] = history = [*history[1:], seen]
        return np.concatenate(history)


def agent_actions(env, observations: dict, policy, seer: Seer) -> dict:
    """Each live agent's action: ``policy`` on what it sees, or its action space's sample (None)."""
    return {
        agent: env.action_space(agent).sample()
        if policy is None
        else policy(seer(observations[agent], env.possible_agents.index(agent)))
        for agent in env.agents
    }


def pettingzoo_returns(make_env, policy, probe, stack: int, episodes: int, seed: int) -> np.ndarray:
    """(episodes, agents) returns of ``policy`` (what an agent sees -> its action, or None: random)."""
    env = make_env()
    returns = np.zeros((episodes, AGENTS))
    for episode in range(episodes):
        observations, _ = env.reset(seed=seed + episode)
        seer = Seer(probe, stack)
        for agent in env.possible_agents:
            env.action_space(agent).seed(seed + episode)
        while env.agents:
            observations, rewards, _, _, _ = env.step(agent_actions(env, observations, policy, seer))
            for agent, reward in rewards.items():
                returns[episode, env.possible_agents.index(agent)] += reward
    env.close()
    return returns


def run(args: Args) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecFrameStack, VecMonitor

    import worldenv.envs as dream_envs
    from worldenv.checkpoint import load_bundle, shipped_checkpoint
    from worldenv.eval.probe import load_probe
    from worldenv.scenes import duo

    torch.set_num_threads(args.threads)
    log = RunLog(Path(args.out) / f"duo-{args.world}-seed{args.seed}")
    probe = None if args.observation == "pixels" else load_probe(load_bundle(args.checkpoint or shipped_checkpoint("duo")))

    def record(env_steps: int, policy) -> dict:
        seed = 3_000_000 + args.seed * 1000
        real = pettingzoo_returns(
            lambda: duo.parallel_env(max_cycles=args.max_cycles), policy, probe, args.stack, args.eval_episodes, seed
        )
        dreamed = pettingzoo_returns(
            lambda: dream_envs.parallel_env(
                scene="duo", checkpoint=args.checkpoint, max_cycles=args.max_cycles, config=args.dream_config()
            ),
            policy,
            probe,
            args.stack,
            args.eval_episodes,
            seed,
        )
        return log.record(
            {
                "env_steps": env_steps,
                "real_return_per_agent": real.mean(0).tolist(),
                "real_team_return": float(real.sum(1).mean()),
                "real_team_return_std": float(real.sum(1).std()),
                "dream_team_return": float(dreamed.sum(1).mean()),
            }
        )

    if args.world == "random":
        return log.summarize(args, record(0, None))
    joint = joint_env(args)
    if probe is None:
        venv = VecMonitor(AgentsAsEnvs(joint))
    else:
        venv = VecFrameStack(VecMonitor(AgentsAsEnvs(ProbeReadout(joint, probe))), args.stack)
    agent = PPO(
        policy_kind(args.observation),
        venv,
        n_steps=args.n_steps,
        batch_size=256,
        n_epochs=10,
        learning_rate=3e-4,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )

    def act(observation):
        return agent.predict(observation, deterministic=True)[0]

    agent.learn(
        total_timesteps=AGENTS * args.env_steps,
        callback=ScoreEvery(args.eval_every, lambda steps: record(steps, act), per_env_step=AGENTS),
    )
    agent.save(log.out / "policy.zip")
    return log.summarize(args, record(agent.num_timesteps // AGENTS, act))


if __name__ == "__main__":
    exit_with(Args, run, __doc__)
