"""What a policy sees, the same in MuJoCo and in the dream.

``pixels``: the 64x64 frame itself (SB3's ``CnnPolicy``). ``probe``: the task state
that the bundle's state probe reads off each frame (joint angles, fingertip and
target for the reacher; pole angle and cart position for the cartpole), the last
``stack`` readings side by side so that velocities are visible (``MlpPolicy``).
The probe is frozen and was trained on the dataset's real frames only: the policy
still sees nothing but frames, through a fixed encoder, and learning from pixels
stops being the bottleneck of a 100k-step budget. Both worlds get the same
wrappers, so a policy trained in one acts in the other unchanged.
"""

from typing import Literal

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack

from worldenv.eval.probe import StateProbe

Observation = Literal["probe", "pixels"]


class ProbeReadout(VecEnvWrapper):
    """Frames (N, H, W, 3) -> the probe's reading (N, d) float32, terminal observations
    included. ``frames`` keeps the last frames, for videos."""

    def __init__(self, venv: VecEnv, probe: StateProbe):
        self.probe = probe
        outputs = probe.head[-1].out_features
        super().__init__(venv, observation_space=spaces.Box(-np.inf, np.inf, (outputs,), np.float32))
        self.frames: np.ndarray | None = None

    def _read(self, frames: np.ndarray) -> np.ndarray:
        return self.probe.predict(frames).astype(np.float32)

    def reset(self) -> np.ndarray:
        self.frames = self.venv.reset()
        return self._read(self.frames)

    def step_wait(self):
        frames, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = self._read(info["terminal_observation"][None])[0]
        self.frames = frames
        return self._read(frames), rewards, dones, infos


def observed(venv: VecEnv, observation: Observation, probe: StateProbe | None, stack: int) -> VecEnv:
    """``venv`` (frames) as the policy sees it."""
    if observation == "pixels":
        return venv
    if probe is None:
        raise ValueError("observation 'probe' needs the bundle's state probe; train it with `worldenv train probe`")
    return VecFrameStack(ProbeReadout(venv, probe), stack)


def policy_kind(observation: Observation) -> str:
    return "CnnPolicy" if observation == "pixels" else "MlpPolicy"


def frames_of(venv: VecEnv, observations: np.ndarray) -> np.ndarray:
    """The frames behind ``observations`` of an ``observed`` env."""
    while isinstance(venv, VecEnvWrapper) and not isinstance(venv, ProbeReadout):
        venv = venv.venv
    return venv.frames if isinstance(venv, ProbeReadout) else observations
