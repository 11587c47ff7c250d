"""Long dreams (``worldenv bench long``): thousands of steps of one dream under the
actions of a MuJoCo episode run beside it, checked for what goes wrong over time:
non-finite latents, frames drifting out of the ground truth's range (collapse to
grey or saturation), cost per step or memory that grows with the step count. The
cost at each mark is timed on a snapshot of the dream at that point, interleaved
with the other marks (``ROUNDS``)."""

import copy
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch

from worldenv.checkpoint import load_bundle
from worldenv.data.collect import episode_seeds
from worldenv.data.policies import make_policy
from worldenv.dream_config import DreamConfig, report_config
from worldenv.scenes import make_scene, unwrapped_scene
from worldenv.serving import Serving
from worldenv.world_model import WorldModel

SEGMENT = 25  # steps timed at each mark
# The machine's speed drifts by tens of percent over minutes (CPU boost, neighbours on a
# shared host), more than any cost of ours would. So the cache is snapshotted before each
# mark's segment during the rollout, and the segments are timed afterwards, interleaved
# (50, 500, 5000, 50, 500, ...) for this many rounds: drift hits every mark alike.
ROUNDS = 5


@dataclass
class LongRolloutConfig:
    steps: int = 5000
    marks: tuple[int, ...] = (50, 500, 5000)  # steps at which cost, memory and frames are reported
    context: int = 4
    policy: str = "smooth"
    seed: int = 300_000
    dream: DreamConfig = DreamConfig(model="teacher", sampling_steps=1, action_guidance=1.0, commit="latent")

    def validate(self) -> None:
        if min(self.marks) < SEGMENT or max(self.marks) > self.steps:
            raise ValueError(f"marks must lie in [{SEGMENT}, steps={self.steps}], got {self.marks}")
        self.dream.without_starts("LongRolloutConfig")


def real_actions(scene_name: str, config: LongRolloutConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One MuJoCo episode of ``context + steps`` frames: its context frames, all actions
    (zeros before the first frame) and per-frame (mean, std) of every frame."""
    scene = unwrapped_scene(make_scene(scene_name, max_episode_steps=-1))
    seed, rng = episode_seeds(config.seed, 0)
    frame, _ = scene.reset(seed=seed)
    policy = make_policy(config.policy)
    policy.reset(scene, rng)
    frames, actions, statistics = [frame], [np.zeros(scene.action_space.shape, np.float32)], [_statistics(frame)]
    for _ in range(config.context - 1 + config.steps):
        action = policy(scene)
        frame, _, terminated, _, _ = scene.step(action)
        if terminated:  # keep going from a fresh start, as an autoresetting env would not: the dream never resets
            frame, _ = scene.reset()
        actions.append(np.asarray(action, np.float32))
        statistics.append(_statistics(frame))
        if len(frames) < config.context:
            frames.append(frame)
    scene.close()
    return np.stack(frames), np.stack(actions), np.array(statistics)


def _statistics(frame: np.ndarray) -> tuple[float, float]:
    return float(frame.mean()), float(frame.std())


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


@torch.inference_mode()
def long_rollout(bundle_path, config: LongRolloutConfig) -> dict:
    config.validate()
    bundle = load_bundle(bundle_path)
    serving = config.dream.serving(bundle.metadata)
    context, actions, real = real_actions(bundle.scene, config)
    model = WorldModel.from_bundle(bundle_path, batch=1, model=serving.model, **config.dream.world_model_kwargs(serving))
    model.reset(context[None], actions[None, : config.context], seeds=[config.seed])
    dream, finite = np.zeros((config.steps, 2)), True
    memory: dict[int, dict] = {}
    snapshots = {}
    for step in range(config.steps):
        if step + SEGMENT in config.marks:
            snapshots[step + SEGMENT] = copy.deepcopy((model.cache, model.state))
        frame = model.step(actions[None, config.context + step])[0][0].cpu().numpy()
        dream[step] = _statistics(frame)
        finite &= bool(torch.isfinite(model.state.last_latent).all())
        if step + 1 in config.marks:
            memory[step + 1] = {
                "resident_mb": _resident_mb(),
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
    seconds: dict[int, list[float]] = {mark: [] for mark in config.marks}
    for _ in range(ROUNDS):
        for mark in config.marks:
            model.cache, model.state = copy.deepcopy(snapshots[mark])
            start = time.perf_counter()
            for step in range(mark - SEGMENT, mark):
                model.step(actions[None, config.context + step])
            seconds[mark].append((time.perf_counter() - start) / SEGMENT)
    low, high = real.min(0), real.max(0)  # the ground truth's range of per-frame (mean, std)
    rows = {}
    for mark in config.marks:
        window = slice(mark - SEGMENT, mark)
        mean, std = dream[window].mean(0)
        rows[str(mark)] = {
            "ms_per_step": 1000 * float(np.median(seconds[mark])),
            **memory[mark],
            "frame_mean": float(mean),
            "frame_std": float(std),
            "in_real_range": bool(((dream[window] >= low) & (dream[window] <= high)).all()),
        }
    cache_mb = (model.cache.keys.numel() + model.cache.values.numel()) * model.cache.keys.element_size() / 2**20
    return {
        "bundle": str(bundle_path),
        "scene": bundle.scene,
        "config": report_config(config, serving),
        "finite": finite,
        "cache_mb": cache_mb,
        "real_frame_mean": [float(low[0]), float(high[0])],
        "real_frame_std": [float(low[1]), float(high[1])],
        "marks": rows,
        "dtype": str(model.dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
    }


def long_rollout_table(reports: list[dict]) -> str:
    head = [
        "scene",
        "model",
        "dtype",
        "step",
        "ms/step",
        "resident MB",
        "peak MB",
        "frame mean (real range)",
        "frame std (real range)",
        "in range",
        "finite",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in reports:
        c = r["config"]
        for mark, row in r["marks"].items():
            rows.append(
                "| "
                + " | ".join(
                    [
                        r["scene"],
                        Serving.from_record(c).name,
                        r["dtype"],
                        mark,
                        f"{row['ms_per_step']:.1f}",
                        f"{row['resident_mb']:.0f}",
                        f"{row['peak_mb']:.0f}",
                        f"{row['frame_mean']:.1f} ({r['real_frame_mean'][0]:.1f}-{r['real_frame_mean'][1]:.1f})",
                        f"{row['frame_std']:.1f} ({r['real_frame_std'][0]:.1f}-{r['real_frame_std'][1]:.1f})",
                        "yes" if row["in_real_range"] else "no",
                        "yes" if r["finite"] else "NO",
                    ]
                )
                + " |"
            )
    return "\n".join(rows)
