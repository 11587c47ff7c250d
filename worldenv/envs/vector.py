"""``gym.make_vec("DiffusionWorld-v0", num_envs=N)``: N dreams in one batch.

Every step is one batched pass of the world model for all N dreams (no Python
loop over envs). Each env has its own generator, seeded like
``SyncVectorEnv`` does (``seed + i``), from which its start contexts and noise
seeds are drawn, and the model's numbers do not depend on the batch
(``nn/batch_invariant.py``): env ``i`` reproduces, bit for bit, the single env
reset with the same seed and given the same actions, across autoresets too.

Autoreset: ``NEXT_STEP`` (Gymnasium's default: the step after an episode ends
resets that env, ignoring its action, with reward 0), ``SAME_STEP`` (the reset
happens in the same step; ``info["final_obs"]``/``info["final_info"]`` hold what
ended; what SB3 expects), or ``DISABLED`` (``reset(options={"reset_mask": m})``).
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import logger, spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from worldenv.dream_config import DreamConfig, dream_config
from worldenv.envs.dream import Dream, check_options, check_seed, require_open
from worldenv.scenes import scene_info
from worldenv.validation import as_array

RESET_OPTIONS = ("reset_mask", "context_frames", "context_actions")


class DiffusionWorldVectorEnv(VectorEnv):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50, "autoreset_mode": AutoresetMode.NEXT_STEP}
    # Narrower than VectorEnv's Space: the dream's (the scene's) Boxes, set in __init__.
    single_observation_space: spaces.Box
    single_action_space: spaces.Box

    def __init__(
        self,
        num_envs: int = 1,
        scene: str | None = None,
        checkpoint: str | Path | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = "rgb_array",
        config: DreamConfig | None = None,
        **settings,
    ):
        """``scene``, ``checkpoint``: which dream (``Dream.load``); ``config``: how it is served, or
        ``settings``, its fields as keyword arguments (``sampling_steps=2``, ...; ``DreamConfig``)."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"DiffusionWorldVectorEnv: expected render_mode None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        try:
            autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(
                f"DiffusionWorldVectorEnv: expected autoreset_mode in {[m.value for m in AutoresetMode]}, got {autoreset_mode!r}"
            ) from None
        config = dream_config(config, settings, "DiffusionWorldVectorEnv")
        self.dream: Dream | None = Dream.load(num_envs, config, scene, checkpoint)
        limit = scene_info(self.dream.scene).max_episode_steps if max_episode_steps is None else max_episode_steps
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise ValueError(f"DiffusionWorldVectorEnv: expected max_episode_steps to be a positive integer, got {limit!r}")
        self.num_envs, self.max_episode_steps, self.render_mode = int(num_envs), int(limit), render_mode
        self.autoreset_mode = autoreset_mode
        self.metadata = {**self.metadata, "render_fps": self.dream.render_fps, "autoreset_mode": autoreset_mode}
        self.single_observation_space, self.single_action_space = self.dream.observation_space, self.dream.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._env_rngs: list[np.random.Generator] | None = None
        size = self.dream.model.tokenizer.config.image_size
        self._frames = np.zeros((self.num_envs, size, size, 3), np.uint8)  # what each env shows
        self._undecoded = np.zeros(self.num_envs, bool)  # envs showing a step's frame not decoded yet
        space = self.single_observation_space
        self._observations = np.zeros((self.num_envs, *space.shape), space.dtype)
        self._elapsed = np.zeros(self.num_envs, np.int64)
        self._needs_reset = np.ones(self.num_envs, bool)  # every env, until the first reset

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        dream = require_open(self.dream, "DiffusionWorldVectorEnv.reset")
        where = "DiffusionWorldVectorEnv.reset"
        options = check_options(options, RESET_OPTIONS, where)
        seeds = self._check_seeds(seed)
        expected_mask = f"reset_mask of shape ({self.num_envs},) and dtype bool"
        mask = as_array(options.pop("reset_mask", np.ones(self.num_envs, bool)), expected_mask, where)
        if mask.shape != (self.num_envs,) or mask.dtype != bool:
            raise ValueError(f"{where}: expected {expected_mask}, got shape {mask.shape} and dtype {mask.dtype}")
        context = None
        if "context_frames" in options or "context_actions" in options:
            context = dream.check_context(options.get("context_frames"), options.get("context_actions"), int(mask.sum()), where)
        # Seeded only now: a refused reset leaves the env as it was. The batch generator takes an
        # int only; per-env seeds (a list) seed the envs alone.
        super().reset(seed=seeds[0] if seeds is not None and isinstance(seed, (int, np.integer)) else None)
        self._seed_envs(seeds)
        info = self._reset_envs(mask, context)
        return self._observations.copy(), info

    def step(self, actions):
        dream = require_open(self.dream, "DiffusionWorldVectorEnv.step")
        if self._env_rngs is None:
            raise RuntimeError("DiffusionWorldVectorEnv: call reset() before step()")
        if self.autoreset_mode == AutoresetMode.DISABLED and self._needs_reset.any():
            raise RuntimeError(
                f"DiffusionWorldVectorEnv: envs {np.flatnonzero(self._needs_reset).tolist()} ended; "
                "reset them with reset(options={'reset_mask': ...}) before stepping (autoreset is disabled)"
            )
        actions = dream.check_actions(actions, (self.num_envs,), "DiffusionWorldVectorEnv.step")
        starting = self._needs_reset.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros(self.num_envs, bool)
        frames, agent_rewards, ended_by_model = dream.step(actions)
        if frames is not None:  # a copy: resets overwrite rows, and the model keeps what it showed
            self._frames = frames.cpu().numpy().copy()
        self._undecoded[:] = frames is None
        self._observations = dream.observe(frames, slice(None)).copy()
        rewards = agent_rewards.cpu().numpy().astype(np.float64)  # (N, K)
        terminated = ended_by_model.cpu().numpy()
        self._elapsed += 1
        truncated = self._elapsed >= self.max_episode_steps  # as TimeLimit: also when terminated at the limit
        info: dict[str, Any] = {}
        for key, value in dream.step_info(rewards).items():
            info[key], info[f"_{key}"] = value, ~starting
        reward = rewards.sum(axis=1)
        ended = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and ended.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final_obs[i] = self._observations[i].copy()
            final_info = {key: value & ended if key.startswith("_") else value for key, value in info.items()}
            info.update(final_obs=final_obs, _final_obs=ended.copy(), final_info=final_info, _final_info=ended.copy())
            info.update(self._reset_envs(ended, None))
        if starting.any():
            info.update(self._reset_envs(starting, None))
            reward[starting], terminated[starting], truncated[starting] = 0.0, False, False
        self._needs_reset = (
            (terminated | truncated) if self.autoreset_mode != AutoresetMode.SAME_STEP else np.zeros(self.num_envs, bool)
        )
        return self._observations.copy(), reward, terminated, truncated, info

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:  # as Gymnasium's own envs answer render() without a render mode
            logger.warn(
                "DiffusionWorldVectorEnv.render: the env was made with render_mode=None; "
                "make it with render_mode='rgb_array' to render"
            )
            return None
        dream = require_open(self.dream, "DiffusionWorldVectorEnv.render")
        if self._undecoded.any():  # the agents observe no pixels: decoded now, once
            self._frames[self._undecoded] = dream.model.shown_frames().cpu().numpy()[self._undecoded]
            self._undecoded[:] = False
        return tuple(frame.copy() for frame in self._frames)

    def close_extras(self, **kwargs) -> None:
        # Frees the model (and its accelerator memory) now; VectorEnv.close runs this once, and
        # from here on every call says the env is closed.
        self.dream = None

    def _check_seeds(self, seed) -> list[int | None] | None:
        """Each env's seed, as ``SyncVectorEnv`` seeds its envs: ``seed + i``, or a list of one seed
        (or None) per env; None for no seed."""
        where = "DiffusionWorldVectorEnv.reset"
        if seed is None:
            return None
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seed = check_seed(seed, where)
            return [seed + i for i in range(self.num_envs)]
        if not isinstance(seed, (list, tuple, np.ndarray)):  # a string is a sequence too, of characters
            raise TypeError(
                f"{where}: expected seed to be None, a non-negative integer or a list of "
                f"{self.num_envs} of them (or None), got {seed!r}"
            )
        if len(seed) != self.num_envs:
            raise ValueError(f"{where}: expected {self.num_envs} seeds, got {len(seed)}")
        return [check_seed(s, where) for s in seed]

    def _seed_envs(self, seeds: list[int | None] | None) -> None:
        """One generator per env, from ``_check_seeds``."""
        if seeds is None and self._env_rngs is not None:
            return  # continue every env's stream, as an unseeded Env.reset does
        self._env_rngs = [seeding.np_random(s)[0] for s in seeds or [None] * self.num_envs]

    def _reset_envs(self, mask: np.ndarray, context: tuple[np.ndarray, np.ndarray] | None) -> dict:
        """Prime the envs in ``mask`` (from ``context`` or their next bank draw) in one batched call."""
        rows = np.flatnonzero(mask)
        if not rows.size:
            return {}
        dream, rngs = require_open(self.dream, "DiffusionWorldVectorEnv.reset"), self._env_rngs
        if rngs is None:
            raise RuntimeError("DiffusionWorldVectorEnv: the envs are reset before they are seeded (_seed_envs)")
        draws = [dream.draw_start(rngs[i]) for i in rows]
        indices = np.array([index for index, _ in draws], np.int64)
        if context is None:
            frames, actions = dream.contexts.frames[indices].numpy(), dream.contexts.actions[indices].numpy()
        else:
            frames, actions = context
        dream.model.reset(frames, actions, seeds=[seed for _, seed in draws], mask=torch.from_numpy(mask))
        self._frames[rows] = frames[:, -1]
        self._undecoded[rows] = False
        self._observations[rows] = dream.observe(frames[:, -1], rows)
        self._elapsed[rows] = 0
        self._needs_reset[rows] = False
        if context is not None:
            return {}
        index = np.zeros(self.num_envs, np.int64)
        index[rows] = indices
        return {"context_index": index, "_context_index": mask.copy()}
