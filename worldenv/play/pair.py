"""The two worlds one player drives: a dream and its MuJoCo scene, primed from the same
real start and stepped under the same actions, as ``worldenv record`` pairs them
(``worldenv.eval.record``: its exploration policy makes the context, its side-by-side
writes the saved video). Without MuJoCo (``truth=False``) the dream starts from its
bundle's bank of real starts.

Every method runs on one thread: MuJoCo's offscreen GL context belongs to the thread that
made it (``session.Session`` keeps one worker thread per pair).
"""

import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from worldenv.dream_config import DreamConfig
from worldenv.envs.dream import require_open
from worldenv.envs.single import DiffusionWorldEnv
from worldenv.eval.metrics import psnr
from worldenv.eval.record import SCALE, PairedRollout, RolloutPolicy, real_start, write_side_by_side
from worldenv.eval.video import write_video
from worldenv.play.controls import goal_toward
from worldenv.scenes import make_scene

CONTEXT_POLICY = "random"  # worldenv record's default: the context's actions are white noise


@dataclass(frozen=True)
class Step:
    frame: int  # steps since the start; 0: the last real context frame
    dream: np.ndarray  # (H, W, 3) uint8
    truth: np.ndarray | None
    dream_reward: float = 0.0
    truth_reward: float = 0.0
    dream_terminated: bool = False
    truth_terminated: bool = False
    dream_ms: float = 0.0
    truth_ms: float = 0.0

    @property
    def psnr(self) -> float:
        """The dream against MuJoCo in dB (inf: identical; NaN without MuJoCo)."""
        if self.truth is None:
            return float("nan")
        return float(psnr(torch.from_numpy(self.dream[None]), torch.from_numpy(self.truth[None]))[0])


class Pair:
    def __init__(
        self,
        scene: str | None,
        checkpoint: Path | None,
        config: DreamConfig,
        truth: bool = True,
        context: int = 4,
        keep_steps: int = 1000,
    ):
        """``keep_steps``: the recent steps kept for saving."""
        if context < 1:
            raise ValueError(f"expected context >= 1 real frames, got {context}")
        self.checkpoint, self.context = checkpoint, context
        self.dream = self._load(scene, config if not truth else config.without_starts("worldenv play"))
        self.scene = require_open(self.dream.dream, "worldenv play").scene
        self.truth = make_scene(self.scene, max_episode_steps=-1) if truth else None
        self.fps = int(self.dream.metadata["render_fps"])
        self.history: deque[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = deque(maxlen=keep_steps)
        self.seed, self.frame = 0, 0

    def _load(self, scene: str | None, config: DreamConfig) -> DiffusionWorldEnv:
        self.config = config
        return DiffusionWorldEnv(scene=scene, checkpoint=self.checkpoint, config=config)

    @property
    def serving(self) -> str:
        """The served model as ``component@steps``, the page's name for it."""
        return require_open(self.dream.dream, "worldenv play").serving.name

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of both worlds' frames."""
        height, width = require_open(self.dream.dream, "worldenv play").observation_space.shape[:2]
        return height, width

    def switch(self, model: str, steps: int) -> Step:
        """Dream with another bundle component at ``steps`` sampling steps, from the same start
        again: a model's KV cache cannot be handed to another."""
        self.dream.close()
        self.dream = self._load(self.scene, replace(self.config, model=model, sampling_steps=steps))
        return self.reset(self.seed)

    def reset(self, seed: int) -> Step:
        """Prime both worlds with the same real frames: MuJoCo's episode ``seed`` (as ``record``'s
        ``--seed``) under the context policy; without MuJoCo, the bundle's start drawn by ``seed``."""
        self.seed, self.frame = seed, 0
        self.history.clear()
        if self.truth is None:
            observation, _ = self.dream.reset(seed=seed)
            return Step(0, observation, None)
        frames, actions = real_start(self.truth, RolloutPolicy(CONTEXT_POLICY), seed, self.context)
        observation, _ = self.dream.reset(seed=seed, options={"context_frames": frames, "context_actions": actions})
        return Step(0, observation, frames[-1])

    def step(self, action: np.ndarray, target: tuple[float, float] | None = None) -> Step:
        """One step of both worlds under ``action``, or, with a ``target`` (a point of the frame),
        under the goal policy's action toward it, read off MuJoCo's state as ``record``'s
        exploration policies read it."""
        if target is not None and self.truth is not None:
            action = goal_toward(self.truth.unwrapped, target)
        start = time.perf_counter()
        dream, dream_reward, dream_terminated, *_ = self.dream.step(action)
        dream_ms = (time.perf_counter() - start) * 1000
        truth, truth_reward, truth_terminated, truth_ms = None, float("nan"), False, float("nan")
        if self.truth is not None:
            start = time.perf_counter()
            truth, reward, terminated, *_ = self.truth.step(action)
            truth_ms = (time.perf_counter() - start) * 1000
            truth_reward, truth_terminated = float(reward), bool(terminated)
        self.frame += 1
        self.history.append((dream, truth, np.asarray(action, np.float32)))
        return Step(
            self.frame,
            dream,
            truth,
            float(dream_reward),
            truth_reward,
            bool(dream_terminated),
            truth_terminated,
            dream_ms,
            truth_ms,
        )

    def recent(self, seconds: float) -> "Clip":
        """The last ``seconds`` of play (at the scene's rate), copied out of the history so that
        another thread may encode it while this one steps on."""
        recent = list(self.history)[-max(1, round(seconds * self.fps)) :]
        if not recent:
            raise ValueError("save: nothing played since the start yet; expected at least one step")
        truth = None if self.truth is None else np.stack([t for _, t, _ in recent if t is not None])
        return Clip(np.stack([d for d, _, _ in recent]), truth, np.stack([a for _, _, a in recent]), self.fps)

    def close(self) -> None:
        self.dream.close()
        if self.truth is not None:
            self.truth.close()


@dataclass(frozen=True)
class Clip:
    dream: np.ndarray  # (T, H, W, 3) uint8
    truth: np.ndarray | None
    actions: np.ndarray  # (T, A)
    fps: int

    def write(self, path: Path) -> None:
        """As ``worldenv record`` writes a rollout: dream | MuJoCo | difference (the dream alone
        without MuJoCo), at the scene's rate, ``.mp4`` or ``.gif`` by ``path``'s suffix."""
        if self.truth is None:
            write_video(path, self.dream.repeat(SCALE, axis=1).repeat(SCALE, axis=2), fps=self.fps)
        else:
            write_side_by_side(
                PairedRollout(
                    self.dream, self.truth, self.actions, context=0, dream_seconds=0.0, truth_seconds=0.0, fps=self.fps
                ),
                path,
            )
