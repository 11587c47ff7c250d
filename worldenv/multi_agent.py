"""A joint-control Gymnasium env seen as a PettingZoo ``ParallelEnv``.

Both the MuJoCo duo scene and its dream are joint envs: one action that lays the
agents' actions end to end, and per-agent rewards in ``info[f"reward_{agent}"]``
(the env's reward is their sum). ``SplitParallelEnv`` gives each agent its slice
of the action and its own reward; all agents see the same frame (a copy each).
Everyone is truncated after ``max_cycles`` steps (the attribute PettingZoo's
tests set) and terminates when the joint env does.
"""

from collections.abc import Mapping

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from worldenv.validation import check_action


class SplitParallelEnv(ParallelEnv[str, np.ndarray, np.ndarray]):
    def __init__(self, joint: gymnasium.Env, agents: tuple[str, ...], name: str, max_cycles: int):
        if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)) or max_cycles < 1:
            raise ValueError(f"{name}: expected max_cycles to be a positive integer, got {max_cycles!r}")
        if not isinstance(joint.action_space, spaces.Box) or not isinstance(joint.observation_space, spaces.Box):
            raise TypeError(
                f"{name}: expected a joint env with Box action and observation spaces, "
                f"got {joint.action_space} and {joint.observation_space}"
            )
        joint_dim = joint.action_space.shape[0]
        if not agents or joint_dim % len(agents):
            raise ValueError(f"{name}: a joint action of {joint_dim} dims does not split evenly among agents {agents}")
        self.joint, self.name = joint, name
        self.metadata = {
            "name": name,
            "render_modes": ["rgb_array"],
            "render_fps": joint.metadata["render_fps"],
            "is_parallelizable": True,
        }
        self.max_cycles = int(max_cycles)
        self.render_mode = joint.render_mode
        self.possible_agents = list(agents)
        self.agents: list[str] = []
        # One space object per agent, created once: PettingZoo requires the same object
        # on every call, and separate objects let each agent's sampling be seeded apart.
        per_agent = joint_dim // len(agents)
        low, high = joint.action_space.low[:per_agent], joint.action_space.high[:per_agent]
        self.observation_spaces = {agent: spaces.Box(0, 255, joint.observation_space.shape, np.uint8) for agent in agents}
        self.action_spaces = {agent: spaces.Box(low, high, (per_agent,), np.float32) for agent in agents}
        self.num_cycles = 0

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[self._check_agent(agent)]

    def action_space(self, agent: str) -> spaces.Box:
        return self.action_spaces[self._check_agent(agent)]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        frame, info = self.joint.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        self.num_cycles = 0
        return self._per_agent(frame, info)

    def step(self, actions: Mapping[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError(f"{self.name}: the episode is over (or never began); call reset() before step()")
        frame, _, terminated, _, info = self.joint.step(self._joint_action(actions))
        self.num_cycles += 1
        truncated = self.num_cycles >= self.max_cycles
        observations, infos = self._per_agent(frame, info)
        rewards = {agent: float(info[f"reward_{agent}"]) for agent in self.agents}
        terminations = dict.fromkeys(self.agents, bool(terminated))
        truncations = dict.fromkeys(self.agents, truncated)
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> np.ndarray | None:
        frame = self.joint.render()  # one rgb_array frame, or None where the joint env has no render mode
        if frame is not None and not isinstance(frame, np.ndarray):
            raise TypeError(f"{self.name}: expected the joint env to render one frame, got {type(frame).__name__}")
        return frame

    def close(self) -> None:
        self.joint.close()

    def _check_agent(self, agent: str) -> str:
        if agent not in self.possible_agents:
            raise ValueError(f"{self.name}: expected an agent in {self.possible_agents}, got {agent!r}")
        return agent

    def _joint_action(self, actions: Mapping[str, np.ndarray]) -> np.ndarray:
        """Check the per-agent actions and lay them out as the joint action."""
        if not isinstance(actions, Mapping):
            raise TypeError(f"{self.name}: expected a dict of actions keyed by {self.agents}, got {type(actions).__name__}")
        unknown = [agent for agent in actions if agent not in self.agents]
        missing = [agent for agent in self.agents if agent not in actions]
        if unknown or missing:
            raise ValueError(f"{self.name}: expected one action for each of {self.agents}; missing {missing}, unknown {unknown}")
        checked = []
        for agent in self.agents:
            space = self.action_spaces[agent]
            checked.append(check_action(actions[agent], space.low, space.high, f"{self.name} {agent}"))
        return np.concatenate(checked)

    def _per_agent(self, frame: np.ndarray, info: dict) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        """A fresh copy of the frame and of the info for each agent, so no two share an array."""
        shared = {key: value for key, value in info.items() if not key.startswith("reward_")}
        observations = {agent: frame.copy() for agent in self.agents}
        infos = {agent: _copy(shared) for agent in self.agents}
        return observations, infos


def _copy(value):
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    return value.copy() if isinstance(value, np.ndarray) else value
