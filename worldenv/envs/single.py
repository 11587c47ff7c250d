"""``DiffusionWorld-v0``: one dream as a Gymnasium env.

Observation and action spaces are the ground-truth scene's, so a policy moves
between ``gym.make("worldenv/Reacher-v0")`` and the dream unchanged; ``observation="latent"``
or ``"probe"`` gives the agent the latent or the state probe's reading instead, and frames
only to ``render()`` (``worldenv.envs.observation``). Reward and
termination come from the model's heads; the time limit is Gymnasium's
``TimeLimit``: the scene's (``make_dream``), or ``max_episode_steps`` of ``gym.make``.

How it dreams is a ``DreamConfig`` (``config=``), or its fields as keyword arguments
(``gym.make("DiffusionWorld-v0", sampling_steps=2)``), made into one by ``dream_config``.

``reset(seed=s)`` starts from a real MuJoCo context from the checkpoint's bank
(or, with ``start_contexts=N``, from a bank of N recorded in the scene when the env
is made, ``DreamConfig``; with ``start_within=W`` too, its windows begin anywhere in the
first W steps of their episodes, run by the exploration policy ``start_policy``), chosen by ``s``;
``reset(options={"context_frames": f, "context_actions": a})`` starts from the
caller's real frames ``(T, H, W, 3)`` and the actions that led to them ``(T, A)``:
how a dream continues a real observation, and how evaluation pairs the dream with
MuJoCo. All sampling noise derives from ``np_random``, so a
seeded reset reproduces the rollout exactly.
"""

from pathlib import Path

import gymnasium
import numpy as np
from gymnasium.wrappers import TimeLimit

from worldenv.dream_config import DreamConfig, dream_config
from worldenv.envs.dream import Dream, check_options, check_seed, require_open
from worldenv.scenes import scene_info

RESET_OPTIONS = ("context_frames", "context_actions")


class DiffusionWorldEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}  # render_fps: the scene's, set per instance

    def __init__(
        self,
        scene: str | None = None,
        checkpoint: str | Path | None = None,
        render_mode: str | None = "rgb_array",
        config: DreamConfig | None = None,
        **settings,
    ):
        """``scene``, ``checkpoint``: which dream (``Dream.load``); ``config``: how it is served, or
        ``settings``, its fields as keyword arguments (``sampling_steps=2``, ...; ``DreamConfig``)."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"DiffusionWorldEnv: expected render_mode None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        config = dream_config(config, settings, "DiffusionWorldEnv")
        self.dream: Dream | None = Dream.load(1, config, scene, checkpoint)
        self.render_mode = render_mode
        self.observation_space, self.action_space = self.dream.observation_space, self.dream.action_space
        self.metadata = {**self.metadata, "render_fps": self.dream.render_fps}
        self._observation: np.ndarray | None = None  # None until the first reset
        self._frame: np.ndarray | None = None  # the frame shown; None while a step's frame is not decoded

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        dream = require_open(self.dream, "DiffusionWorldEnv.reset")
        options = check_options(options, RESET_OPTIONS, "DiffusionWorldEnv.reset")
        seed = check_seed(seed, "DiffusionWorldEnv.reset")
        if options:  # checked before seeding: a refused reset leaves the env as it was
            frames, actions = dream.check_context(
                options.get("context_frames"), options.get("context_actions"), None, "DiffusionWorldEnv.reset"
            )
        super().reset(seed=seed)
        index, noise_seed = dream.draw_start(self.np_random)  # drawn with a context too: the noise seed
        if options:
            info = {}
        else:
            frames, actions = dream.contexts.frames[index].numpy(), dream.contexts.actions[index].numpy()
            info = {"context_index": index}
        dream.model.reset(frames[None], actions[None], seeds=[noise_seed])
        self._frame = frames[-1].copy()
        self._observation = dream.observe(self._frame[None], slice(None))[0]
        return self._observation.copy(), info

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        dream = require_open(self.dream, "DiffusionWorldEnv.step")
        if self._observation is None:
            raise RuntimeError("DiffusionWorldEnv: call reset() before step()")
        action = dream.check_actions(action, (), "DiffusionWorldEnv.step")
        frames, agent_rewards, terminated = dream.step(action[None])
        self._frame = None if frames is None else frames[0].cpu().numpy()
        self._observation = dream.observe(frames, slice(None))[0]
        rewards = agent_rewards[0].cpu().numpy().astype(np.float64)  # (K,): one per agent
        info = {key: float(value) for key, value in dream.step_info(rewards).items()}
        return self._observation.copy(), float(rewards.sum()), bool(terminated[0]), False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:  # as Gymnasium's own envs answer render() without a render mode
            gymnasium.logger.warn(
                "DiffusionWorldEnv.render: the env was made with render_mode=None; make it with render_mode='rgb_array' to render"
            )
            return None
        dream = require_open(self.dream, "DiffusionWorldEnv.render")
        if self._observation is None:
            raise RuntimeError("DiffusionWorldEnv: call reset() before render()")
        if self._frame is None:  # the agent observes no pixels: decoded now, once
            self._frame = dream.model.shown_frames()[0].cpu().numpy()
        return self._frame.copy()

    def close(self) -> None:
        # Frees the model (and its accelerator memory) now, not whenever the env is collected;
        # from here on every call says the env is closed. A second close finds nothing to free.
        self.dream, self._frame, self._observation = None, None, None


def make_dream(episode_steps: int | None = None, **kwargs) -> gymnasium.Env:
    """``DiffusionWorld-v0``'s entry point: the dream under its scene's time limit, or under
    ``episode_steps`` when given. The scene is known only once the checkpoint is read (without
    ``scene=``, from its metadata), so the id cannot register the limit as
    ``worldenv/<Scene>Dream-v0`` does. ``gym.make(..., max_episode_steps=N)`` wraps Gymnasium's
    own ``TimeLimit`` around this one, which Gymnasium does not tell the entry point about: N
    shortens episodes, never lengthens them; ``episode_steps=N`` sets the limit itself."""
    if episode_steps is not None and (
        isinstance(episode_steps, bool) or not isinstance(episode_steps, (int, np.integer)) or episode_steps < 1
    ):
        raise ValueError(f"expected episode_steps to be a positive int (the episode's time limit), got {episode_steps!r}")
    env = DiffusionWorldEnv(**kwargs)
    scene = require_open(env.dream, "make_dream").scene
    return TimeLimit(env, int(episode_steps or scene_info(scene).max_episode_steps))


# gym.make reads the render modes off the entry point (the checker knows no function attributes).
make_dream.metadata = DiffusionWorldEnv.metadata  # type: ignore[attr-defined]
