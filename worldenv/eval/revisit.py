"""The memory suite (``worldenv eval --suite memory``): does a dream still show what
it saw after the camera turned away for T frames and back?

Each held-out panorama episode starts with ``context`` real frames in which the
camera turns to centre the object nearest its heading and then holds still; the
dream is primed on them. Then, for each T, the camera turns away at full speed
(by up to 180 degrees), holds, and turns back with the opposite actions, which
restores the pose exactly, so the view after the return is the one before it; T
counts the frames from the first turn away to the last turn back. The dream gets
the same actions, and its frames after the return (``settle`` still frames) are
scored against MuJoCo's: PSNR and the state probe's error on where the objects in
view stand (metres; ``worldenv.eval.probe.objects_in_view``).
The same bundle dreams with three caches: the window alone, window and sinks, and
window, sinks and long-term memory (``worldenv.memory``).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from worldenv.checkpoint import load_bundle
from worldenv.data.collect import episode_seeds
from worldenv.dream_config import DreamConfig, report_config
from worldenv.eval.metrics import psnr
from worldenv.eval.probe import load_probe, probe_errors, probe_targets
from worldenv.scenes import make_scene
from worldenv.scenes.panorama import MAX_TURN, wrap_angle
from worldenv.world_model import WorldModel, resolve_dtype

CACHES = {  # what each ablation keeps, overriding the bundle's cache; {}: as trained
    "window": {"sink_frames": 0, "memory_frames": 0},
    "window + sinks": {"memory_frames": 0},
    "window + sinks + memory": {},
}


@dataclass
class RevisitConfig:
    away: tuple[int, ...] = (8, 32, 64, 128, 256)  # frames between the first turn away and the last turn back
    episodes: int = 8
    context: int = 8  # real frames priming the dream: turn to the nearest object, then hold
    settle: int = 4  # still frames after the return, all scored
    seed: int = 200_000  # disjoint from collection (0) and `worldenv eval` (100_000)
    dream: DreamConfig = DreamConfig(model="teacher", sampling_steps=4, action_guidance=1.0, commit="latent")

    def validate(self) -> None:
        self.dream.without_starts("RevisitConfig")
        if min(self.away) < 2:
            raise ValueError(f"away: every T must be >= 2 (one frame out, one back), got {self.away}")
        if self.context < 2 or self.settle < 1 or self.episodes < 1:
            raise ValueError(
                f"context must be >= 2, settle >= 1 and episodes >= 1, got {self.context}, {self.settle}, {self.episodes}"
            )


def revisit_actions(away: int, direction: float, settle: int) -> np.ndarray:
    """(away + settle, 2): full-speed turns out, a hold, the same turns back, then still."""
    turns = min(away // 2, int(round(np.pi / MAX_TURN)))  # at most half a turn each way
    actions = np.zeros((away + settle, 2), np.float32)
    actions[:turns, 0] = direction
    actions[away - turns : away, 0] = -direction
    return actions


def look_actions(scene, frames: int) -> np.ndarray:
    """Turns that centre the object nearest the heading (at most a full-speed turn per
    frame), then holds: (frames - 1, 2), computed from the scene's true state."""
    data = scene.data
    x, y, yaw = data.qpos
    bearings = wrap_angle(np.arctan2(data.mocap_pos[:, 1] - y, data.mocap_pos[:, 0] - x) - yaw)
    remaining = float(bearings[np.argmin(np.abs(bearings))])
    actions = np.zeros((frames - 1, 2), np.float32)
    for step in range(frames - 1):
        turn = np.clip(remaining / MAX_TURN, -1.0, 1.0)
        actions[step, 0] = turn
        remaining -= turn * MAX_TURN
    return actions


def real_revisits(config: RevisitConfig, away: int) -> dict[str, Any]:
    """MuJoCo episodes (E, context + away + settle, ...): frames, actions (zeros before
    the first frame), states."""
    scene = make_scene("panorama", max_episode_steps=-1).unwrapped
    frames, actions, states = [], [], []
    for episode in range(config.episodes):
        seed, rng = episode_seeds(config.seed, episode)
        first, info = scene.reset(seed=seed)
        steps = np.concatenate(
            [look_actions(scene, config.context), revisit_actions(away, float(rng.choice([-1.0, 1.0])), config.settle)]
        )
        episode_frames, episode_states = [first], [info["state"]]
        for action in steps:
            frame, _, _, _, info = scene.step(action)
            episode_frames.append(frame)
            episode_states.append(info["state"])
        frames.append(np.stack(episode_frames))
        actions.append(np.concatenate([np.zeros((1, 2), np.float32), steps]))
        states.append({key: np.stack([s[key] for s in episode_states]) for key in episode_states[0]})
    scene.close()
    return {
        "frames": np.stack(frames),
        "actions": np.stack(actions),
        "states": {key: np.stack([s[key] for s in states]) for key in states[0]},
    }


def dream_revisits(model: WorldModel, real: dict, config: RevisitConfig) -> np.ndarray:
    """The dream's frames after the context, under the real actions: (E, away + settle, H, W, 3)."""
    k = config.context
    model.reset(real["frames"][:, :k], real["actions"][:, :k], seeds=np.arange(config.episodes) + config.seed)
    steps = real["actions"].shape[1] - k
    return np.stack([model.step(real["actions"][:, k + i])[0].cpu().numpy() for i in range(steps)], axis=1)


def revisit_suite(bundle_path, config: RevisitConfig) -> dict:
    config.validate()
    bundle = load_bundle(bundle_path)
    if bundle.metadata.get("scene") != "panorama":
        raise ValueError(f"the memory suite runs on a panorama bundle; {bundle_path} is {bundle.metadata.get('scene')!r}")
    probe = load_probe(bundle)
    serving = config.dream.serving(bundle.metadata)
    report: dict[str, Any] = {
        "bundle": str(bundle_path),
        "config": report_config(config, serving),
        "caches": {name: {} for name in CACHES},
        "dtype": str(resolve_dtype(config.dream.dtype, config.dream.device)).removeprefix("torch."),
    }
    for away in config.away:
        real = real_revisits(config, away)
        returned = slice(config.context + away, None)  # the frames after the last turn back
        truth_frames = real["frames"][:, returned]
        truth = probe_targets("panorama", {key: value[:, returned] for key, value in real["states"].items()})
        floor = probe_errors("panorama", probe.predict(truth_frames), truth)  # the probe on MuJoCo's own frames
        report.setdefault("probe_on_real_frames", {})[str(away)] = {key: float(v.mean()) for key, v in floor.items()}
        for name, slots in CACHES.items():
            model = WorldModel.from_bundle(
                bundle_path,
                batch=config.episodes,
                model=serving.model,
                cache_slots=slots,
                **config.dream.world_model_kwargs(serving),
            )
            shape = model.cache.shape
            report["caches"][name]["slots"] = {
                "sink_frames": shape.sink_frames,
                "memory_frames": shape.memory_frames,
                "window_frames": shape.window_frames,
            }
            dream = dream_revisits(model, real, config)[:, away:]
            pairs = torch.from_numpy(dream).flatten(0, 1), torch.from_numpy(truth_frames).flatten(0, 1)
            scores = {"psnr": float(psnr(*pairs).clamp(max=100).mean())}
            errors = probe_errors("panorama", probe.predict(dream), truth)
            scores.update({key: float(value.mean()) for key, value in errors.items()})
            report["caches"][name][str(away)] = scores
    return report


def revisit_table(report: dict) -> str:
    caches = list(report["caches"])
    away = report["config"]["away"]
    head = ["T (frames away)"] + [f"PSNR {c}" for c in caches] + [f"objects-in-view err {c} (m)" for c in caches]
    rows = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for t in away:
        cells = [str(t)] + [f"{report['caches'][c][str(t)]['psnr']:.2f}" for c in caches]
        cells += [f"{report['caches'][c][str(t)]['objects_in_view']:.3f}" for c in caches]
        rows.append("| " + " | ".join(cells) + " |")
    floor = ", ".join(f"T={t}: {report['probe_on_real_frames'][str(t)]['objects_in_view']:.3f}" for t in away)
    c = report["config"]
    slots = ", ".join(f"{name}: {value['slots']}" for name, value in report["caches"].items())
    return "\n".join(
        [
            f"panorama revisits, {c['model']} at {c['sampling_steps']} steps, {c['episodes']} episodes, "
            f"{c['settle']} frames scored after each return",
            "",
            *rows,
            "",
            f"objects-in-view error of the probe on MuJoCo's own frames (the floor): {floor}",
            "",
            f"caches: {slots}",
        ]
    )
