"""A trained agent as a data-collection policy (``worldenv collect --policy trained``).

A policy trained in a dream goes where that dream is wrong: a cartpole policy trained in
a dream that keeps its cart away from the rail's end runs the real cart into it. Its real
episodes, recorded as a dataset and trained on beside the exploration data, show the
world model what it got wrong. That is the loop of Dreamer and DIAMOND: collect with the
agent, train the world model, train the agent in it.

The policy sees in MuJoCo what it saw in training (``agents/observations.py``): the
bundle's frozen state probe's readings of the last ``stack`` frames side by side, oldest
first, with zeros before the first frame, as SB3's ``VecFrameStack`` stacks them.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from gymnasium import spaces

from worldenv.scenes.base import MujocoScene

if TYPE_CHECKING:
    from stable_baselines3 import PPO

SETTINGS = ("path", "checkpoint", "stack", "deterministic")


class TrainedPolicy:
    """An SB3 policy (``policy.zip``) acting on the probe readings of ``checkpoint``'s
    bundle. ``deterministic=False`` samples its actions, as PPO's training episodes do,
    for more varied data; each episode's samples are fixed by its generator."""

    name = "trained"

    def __init__(self, path: str, checkpoint: str, stack: int = 2, deterministic: bool = False):
        self.path, self.checkpoint, self.stack, self.deterministic = Path(path), Path(checkpoint), stack, deterministic
        self.model: PPO | None = None  # loaded on the first reset, in the worker process that runs the episodes

    def _load(self) -> None:
        from stable_baselines3 import PPO

        from worldenv.checkpoint import load_bundle
        from worldenv.eval.probe import load_probe

        self.probe = load_probe(load_bundle(self.checkpoint))
        self.readings = self.probe.outputs
        model = PPO.load(self.path, device="cpu")
        expected = (self.stack * self.readings,)
        if model.observation_space.shape != expected:
            raise ValueError(
                f"{self.path}: expected a policy that observes {self.stack} stacked readings of "
                f"{self.checkpoint}'s probe, shape {expected}; it observes "
                f"{model.observation_space.shape}"
            )
        if not isinstance(model.action_space, spaces.Box):
            raise ValueError(f"{self.path}: expected a policy with continuous (Box) actions, got {model.action_space}")
        self.model, self.action_space = model, model.action_space

    def reset(self, scene: MujocoScene, rng: np.random.Generator) -> None:
        if self.model is None:
            self._load()
        self.generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        self.observation = np.zeros(self.stack * self.readings, np.float32)
        self.first = True

    def __call__(self, scene: MujocoScene) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("TrainedPolicy: call reset() before asking for an action")
        reading = self.probe.predict(scene.render()[None])[0].astype(np.float32)
        if not self.first:  # the first frame's reading fills the last slot alone
            self.observation = np.roll(self.observation, -self.readings)
        self.observation[-self.readings :] = reading
        self.first = False
        with torch.no_grad():
            observation = torch.as_tensor(self.observation)[None]
            distribution = self.model.policy.get_distribution(observation)
            if self.deterministic:
                action = distribution.mode()
            else:  # sampled from this episode's generator, not torch's global one
                gaussian = distribution.distribution
                if not isinstance(gaussian, torch.distributions.Normal):  # what SB3 gives Box actions
                    raise TypeError(f"{self.path}: expected a Gaussian policy, got {type(gaussian).__name__}")
                mean, std = gaussian.mean, gaussian.stddev
                action = mean + std * torch.randn(mean.shape, generator=self.generator)
        low, high = self.action_space.low, self.action_space.high
        return np.clip(action[0].numpy(), low, high).astype(np.float32)
