"""Paired rollouts for a person to watch: the dream and MuJoCo from the same real
start, under the same actions, side by side (dream | MuJoCo | difference).

The dream is primed with the first ``context`` real frames. Then, at every step,
the policy picks one action that both worlds receive: an exploration policy
(``uniform``/``random``, ``smooth``, ``goal``) reads the MuJoCo scene, as in data
collection; a trained SB3 policy (a ``.zip`` path) acts on the dream's frame, as
an agent trained in the dream would. Both worlds are timed in the same run. The
rollout stops where MuJoCo ends the episode (a fallen pole); the step at which
the dream's termination head ended it is recorded beside it.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from worldenv.data.collect import episode_seeds
from worldenv.data.policies import POLICIES, make_policy
from worldenv.dream_config import DreamConfig
from worldenv.envs.dream import require_open
from worldenv.envs.single import DiffusionWorldEnv
from worldenv.eval.metrics import psnr
from worldenv.eval.video import write_video
from worldenv.scenes import make_scene, unwrapped_scene

HORIZONS = (1, 5, 10, 25, 50, 100, 200, 500, 1000)
DIFFERENCE_GAIN = 3  # |dream - truth| is faint at 64x64; amplified so drift is visible
SCALE = 4  # 64 px frames, shown at 256 px


@dataclass
class PairedRollout:
    dream: np.ndarray  # (T, H, W, 3) uint8, the context frames first
    truth: np.ndarray  # (T, H, W, 3) uint8
    actions: np.ndarray  # (T - context, A)
    context: int
    dream_seconds: float  # time in the dream's step() calls
    truth_seconds: float  # time in MuJoCo's step() (physics and rendering)
    fps: int
    truth_ended: int | None = None  # step (1-based) at which MuJoCo terminated the episode
    dream_ended: int | None = None  # first step at which the dream's termination head did

    @property
    def steps(self) -> int:
        return len(self.actions)

    def psnr_per_horizon(self) -> dict[int, float]:
        scores = psnr(torch.from_numpy(self.dream[self.context :]), torch.from_numpy(self.truth[self.context :]))
        return {h: float(scores[h - 1]) for h in HORIZONS if h <= self.steps}


class RolloutPolicy:
    """``spec``: an exploration policy name (``random`` = ``uniform``) or the path of an SB3
    model ``.zip``. The context frames always come from exploration (``smooth`` for an agent)."""

    def __init__(self, spec: str):
        name = "uniform" if spec == "random" else spec
        self.agent = None
        if name not in POLICIES:
            path = Path(spec)
            if path.suffix != ".zip" or not path.is_file():
                raise ValueError(
                    f"policy: expected random, {', '.join(sorted(POLICIES))} or an existing SB3 model .zip, got {spec!r}"
                )
            from stable_baselines3 import PPO

            self.agent = PPO.load(path, device="cpu")
            name = "smooth"
        self.explorer = make_policy(name)

    def reset(self, scene, rng: np.random.Generator) -> None:
        self.explorer.reset(scene, rng)

    def explore(self, scene) -> np.ndarray:
        return np.asarray(self.explorer(scene), np.float32)

    def __call__(self, dream_frame: np.ndarray, scene) -> np.ndarray:
        if self.agent is None:
            return self.explore(scene)
        return np.asarray(self.agent.predict(dream_frame, deterministic=True)[0], np.float32)


def real_start(truth, act: "RolloutPolicy", seed: int, context: int) -> tuple[np.ndarray, np.ndarray]:
    """The real start a paired dream begins from: MuJoCo's episode ``seed`` (through
    ``episode_seeds``) run ``context - 1`` steps under ``act``'s exploration. Returns the
    ``context`` frames and the action that led to each (the first: zeros)."""
    scene = unwrapped_scene(truth)
    env_seed, rng = episode_seeds(seed, 0)
    frame, _ = truth.reset(seed=env_seed)
    act.reset(scene, rng)
    frames, actions = [frame], [np.zeros(scene.action_space.shape, np.float32)]
    for _ in range(context - 1):
        action = act.explore(scene)
        frame, *_ = truth.step(action)
        frames.append(frame)
        actions.append(np.asarray(action, np.float32))
    return np.stack(frames), np.stack(actions)


def paired_rollout(
    checkpoint: Path | None,
    policy: str,
    steps: int,
    seed: int = 0,
    context: int = 4,
    scene: str | None = None,
    dream_config: DreamConfig = DreamConfig(),
) -> PairedRollout:
    """``dream_config``: how the dream is served (by default the bundle's choice, on the CPU)."""
    if steps < 1 or context < 1:
        raise ValueError(f"expected steps >= 1 and context >= 1, got {steps} and {context}")
    dream = DiffusionWorldEnv(scene=scene, checkpoint=checkpoint, config=dream_config.without_starts("paired_rollout"))
    truth = make_scene(require_open(dream.dream, "paired_rollout").scene, max_episode_steps=-1)
    truth_scene = unwrapped_scene(truth)
    act = RolloutPolicy(policy)
    context_frames, context_actions = real_start(truth, act, seed, context)
    observation, _ = dream.reset(seed=seed, options={"context_frames": context_frames, "context_actions": context_actions})
    real_frames, dream_frames, actions = list(context_frames), list(context_frames), []
    dream_seconds = truth_seconds = 0.0
    truth_ended = dream_ended = None
    for step in range(1, steps + 1):
        action = act(observation, truth_scene)
        start = time.perf_counter()
        observation, _, dream_terminated, *_ = dream.step(action)
        dream_seconds += time.perf_counter() - start
        start = time.perf_counter()
        frame, _, truth_terminated, *_ = truth.step(action)
        truth_seconds += time.perf_counter() - start
        dream_frames.append(observation)
        real_frames.append(frame)
        actions.append(action)
        if dream_terminated and dream_ended is None:
            dream_ended = step
        if truth_terminated:
            truth_ended = step
            break
    fps = truth.metadata["render_fps"]
    dream.close()
    truth.close()
    return PairedRollout(
        np.stack(dream_frames),
        np.stack(real_frames),
        np.stack(actions),
        context,
        dream_seconds,
        truth_seconds,
        fps,
        truth_ended,
        dream_ended,
    )


def side_by_side(rollout: PairedRollout, scale: int = SCALE) -> np.ndarray:
    """(T, H*scale, 3*W*scale + 2 gaps, 3) uint8: dream | MuJoCo | amplified difference."""
    difference = np.abs(rollout.dream.astype(np.int16) - rollout.truth.astype(np.int16))
    difference = np.clip(difference * DIFFERENCE_GAIN, 0, 255).astype(np.uint8)
    gap = np.full((*rollout.dream.shape[:2], 2, 3), 255, np.uint8)
    panels = np.concatenate([rollout.dream, gap, rollout.truth, gap, difference], axis=2)
    return panels.repeat(scale, axis=1).repeat(scale, axis=2)


def write_side_by_side(rollout: PairedRollout, path: Path) -> Path:
    write_video(Path(path), side_by_side(rollout), fps=rollout.fps)
    return Path(path)


def report_lines(rollout: PairedRollout) -> list[str]:
    dream_fps = rollout.steps / rollout.dream_seconds
    truth_fps = rollout.steps / rollout.truth_seconds
    lines = [
        f"dream   {dream_fps:8.1f} frames/s (1 env, this run)",
        f"MuJoCo  {truth_fps:8.1f} frames/s (step + render, 1 env, this run); dream/MuJoCo = {dream_fps / truth_fps:.2f}",
        "PSNR (dB) of the dream against MuJoCo, per horizon:",
    ]
    lines += [f"  h={h:<4d} {value:6.2f}" for h, value in rollout.psnr_per_horizon().items()]
    if rollout.truth_ended or rollout.dream_ended:
        lines.append(
            f"episode ended at step {rollout.truth_ended or '-'} in MuJoCo, "
            f"{rollout.dream_ended or '-'} in the dream (termination head)"
        )
    return lines
