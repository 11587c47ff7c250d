"""An SB3 policy trained in a Gymnasium env as the expert of its ``gym:`` scene
(``collect.expert``): the ``goal`` exploration policy then acts as it does, plus a
little correlated noise, so the data holds the states a good policy visits (a
cheetah running fast), which noise alone never reaches.

Unlike ``trained_policy.py``'s agent, which sees the probe's readings of frames, the
expert sees what it was trained on: the env's own observation vector, unnormalised
(a policy trained under ``VecNormalize`` needs its statistics, which are not applied).
"""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces

if TYPE_CHECKING:
    from worldenv.scenes.gym_scene import GymScene

SETTINGS = ("path", "algo", "deterministic")
ALGORITHMS = ("ppo", "sac", "td3", "a2c", "ddpg")


class SB3Expert:
    """``algo`` (one of ``ALGORITHMS``) loaded from ``path``; acts on ``scene.env_observation``
    and returns actions in the scene's ``[-1, 1]``."""

    def __init__(self, path: str, algo: str = "ppo", deterministic: bool = True):
        if algo not in ALGORITHMS:
            raise ValueError(f"expert: expected algo in {list(ALGORITHMS)}, got {algo!r}")
        import stable_baselines3

        self.path, self.deterministic = Path(path), deterministic
        self.model = getattr(stable_baselines3, algo.upper()).load(self.path, device="cpu")
        if not isinstance(self.model.action_space, spaces.Box):
            raise ValueError(f"{self.path}: expected a policy with continuous (Box) actions, got {self.model.action_space}")

    def __call__(self, scene: "GymScene") -> np.ndarray:
        expected = self.model.observation_space.shape
        if np.shape(scene.env_observation) != expected:
            raise ValueError(
                f"{self.path}: expected a policy of the env's observations, shape {np.shape(scene.env_observation)}; "
                f"it observes {expected}"
            )
        action, _ = self.model.predict(scene.env_observation, deterministic=self.deterministic)
        return scene.to_model_action(action)
