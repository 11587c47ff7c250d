"""The batched dream as a stable-baselines3 ``VecEnv``.

SB3 does not take Gymnasium's ``VectorEnv``; this adapter runs
``DiffusionWorldVectorEnv`` in same-step autoreset mode and translates to SB3's
conventions: ``dones = terminated | truncated``; on a done, ``infos[i]`` carries
``terminal_observation`` (the last frame of the episode that ended; the returned
observation is already the next episode's first) and ``TimeLimit.truncated``
(truncated and not terminated, so PPO bootstraps from the terminal observation).

    venv = DreamVecEnv(num_envs=16)                 # the shipped reacher dream
    model = PPO("CnnPolicy", VecMonitor(venv), seed=0)
"""

from collections.abc import Sequence

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from worldenv.envs.dream import require_open
from worldenv.envs.vector import DiffusionWorldVectorEnv

# What step_wait finds when no step_async came before it: not None, which is an action the vector
# env must see (and refuse, naming what it expected).
_NO_ACTIONS = object()


class DreamVecEnv(VecEnv):
    def __init__(self, num_envs: int = 1, **dream_kwargs):
        """``dream_kwargs``: as for ``DiffusionWorldVectorEnv`` (scene, checkpoint, max_episode_steps,
        config or DreamConfig's fields: sampling_steps, device, ...), except the autoreset mode,
        which SB3 fixes."""
        if "autoreset_mode" in dream_kwargs:
            raise ValueError("DreamVecEnv: SB3 needs same-step autoreset; do not pass autoreset_mode")
        self.venv = DiffusionWorldVectorEnv(num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **dream_kwargs)
        self.render_mode = self.venv.render_mode
        super().__init__(num_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._actions = _NO_ACTIONS

    def reset(self) -> np.ndarray:
        # SB3's seed()/set_options() take effect here, once: [seed, seed + 1, ...] as the vector env expects.
        seeds: list[int | None] | None = None if self._seeds[0] is None else [None if s is None else int(s) for s in self._seeds]
        options = self._options[0] or None
        observations, _ = self.venv.reset(seed=seeds, options=options)
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is _NO_ACTIONS:
            raise RuntimeError("DreamVecEnv: step_wait() without step_async()")
        # Taken before stepping: actions the vector env refuses are not stepped again by the next step_wait.
        actions, self._actions = self._actions, _NO_ACTIONS
        observations, rewards, terminated, truncated, info = self.venv.step(actions)
        dones = terminated | truncated
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        for key in (f"reward_{agent}" for agent in require_open(self.venv.dream, "DreamVecEnv.step_wait").agents):
            for i in range(self.num_envs):
                infos[i][key] = float(info[key][i])
        for i in np.flatnonzero(dones).tolist():
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return observations, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()  # None without a render mode: no env has an image
        return [None] * self.num_envs if frames is None else list(frames)

    # Every sub-env is the same dream in one batch: attributes are the vector env's.
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"DreamVecEnv: the {self.num_envs} dreams share one model; set {attr_name!r} on .venv instead")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list:
        raise AttributeError(f"DreamVecEnv: no per-env methods ({method_name!r}); the dreams are one batched model")

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
