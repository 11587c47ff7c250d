"""Dream against MuJoCo: the same start frames and action sequences in the
scene and in the world model (open loop, autoregressive), scored per horizon.

For each action policy (uniform noise, smooth noise, the scene's goal-directed
expert) fresh episodes are run in MuJoCo from held-out seeds; their first
``context`` frames prime the dream, which then receives the same actions.
Reported per horizon: PSNR, SSIM, foreground IoU, state-probe error in task
units, reward and termination error, and frame statistics (a collapsing dream
drifts out of the real frames' range), for the model and, in the same run, for
the copy-last-frame baseline. The tokenizer's reconstruction is scored on the
same frames.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch

from worldenv.checkpoint import load_bundle
from worldenv.data.collect import CollectConfig, run_episode
from worldenv.data.policies import make_policy
from worldenv.dream_config import DreamConfig, report_config
from worldenv.eval.metrics import foreground_iou, psnr, ssim
from worldenv.eval.probe import load_probe, probe_errors, probe_targets
from worldenv.nn.tokenizer import TokenizerConfig, to_uint8
from worldenv.scenes import make_scene, scene_class
from worldenv.world_model import WorldModel

logger = logging.getLogger(__name__)
HORIZONS = (1, 5, 10, 15, 25, 50, 100, 200, 500, 1000)  # 15: the imagination horizon RL uses
FOREGROUND_THRESHOLD = 40  # intensity levels from the background that count as an object


@dataclass(frozen=True)
class EvalConfig:
    episodes: int = 8  # per action policy
    horizon: int = 200
    context: int = 4  # real frames that prime each dream
    policies: tuple[str, ...] = ("uniform", "smooth", "goal")
    seed: int = 100_000  # episode seeds derive from (seed, i): disjoint from collection's default seed 0
    # How the dreams are served: teacher@8, unguided, committing the latent, unless told otherwise (not the
    # bundle's choice: scores of one bundle's components stay comparable).
    dream: DreamConfig = DreamConfig(model="teacher", sampling_steps=8, action_guidance=1.0, commit="latent")

    def __post_init__(self):
        self.dream.without_starts("EvalConfig")


class RealRollouts(TypedDict):
    """``real_rollouts``' episodes, stacked (E, L, ...)."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    valid: np.ndarray  # (E, L) bool: the frame is the episode's own, not a repeat of its last
    states: dict[str, np.ndarray]


def real_rollouts(scene: str, policy: str, config: EvalConfig, width: int, height: int) -> RealRollouts:
    """Episodes of ``context + horizon`` frames in MuJoCo, stacked (E, L, ...);
    actions/rewards aligned to the frame they lead to (zeros before the first)."""
    length = config.context + config.horizon
    collect = CollectConfig(
        scene=scene,
        episodes=config.episodes,
        steps_per_episode=length - 1,
        policy=policy,
        seed=config.seed + 1000 * scene_policies(scene, config.policies).index(policy),
        width=width,
        height=height,
    )
    env = make_scene(scene, max_episode_steps=length - 1, width=width, height=height)
    episodes = [run_episode(env, make_policy(policy), collect, e) for e in range(config.episodes)]
    env.close()

    def pad(values: np.ndarray) -> np.ndarray:  # episodes that terminate early repeat their last frame
        return np.concatenate([values, np.repeat(values[-1:], length - len(values), axis=0)])

    def per_frame(steps: np.ndarray) -> np.ndarray:
        return pad(np.concatenate([np.zeros_like(steps[:1]), steps]))

    return {
        "frames": np.stack([pad(e.frames) for e in episodes]),
        "actions": np.stack([per_frame(e.actions) for e in episodes]),
        "rewards": np.stack([per_frame(e.rewards) for e in episodes]),
        "terminated": np.stack([per_frame(e.terminated) for e in episodes]),
        "valid": np.stack([pad(np.ones(len(e.frames), bool)) & (np.arange(length) < len(e.frames)) for e in episodes]),
        "states": {k: np.stack([pad(e.states[k]) for e in episodes]) for k in episodes[0].states},
    }


def dream_rollouts(model: WorldModel, real: RealRollouts, config: EvalConfig) -> dict[str, np.ndarray]:
    """Prime on the first ``context`` real frames, then feed the real actions."""
    k = config.context
    model.reset(real["frames"][:, :k], real["actions"][:, :k], seeds=np.arange(len(real["frames"])) + config.seed)
    frames, rewards, terminated = [], [], []
    for step in range(config.horizon):
        frame, reward, term = model.step(real["actions"][:, k + step])
        frames.append(frame.cpu().numpy())
        rewards.append(reward.cpu().numpy())
        terminated.append(term.cpu().numpy())
    return {"frames": np.stack(frames, 1), "rewards": np.stack(rewards, 1), "terminated": np.stack(terminated, 1)}


def frame_scores(predicted: np.ndarray, real: np.ndarray, background: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame image scores of (n, H, W, 3) uint8 pairs."""
    p, r = torch.from_numpy(predicted), torch.from_numpy(real)
    return {
        "psnr": psnr(p, r).clamp(max=100.0).numpy(),
        "ssim": ssim(p, r).numpy(),
        "foreground_iou": foreground_iou(p, r, torch.from_numpy(background), FOREGROUND_THRESHOLD).numpy(),
    }


def evaluate(bundle_path: Path, config: EvalConfig) -> dict:
    bundle = load_bundle(Path(bundle_path))
    scene = bundle.scene
    probe = load_probe(bundle)
    serving = config.dream.serving(bundle.metadata)
    horizons = [h for h in HORIZONS if h <= config.horizon]
    report: dict[str, Any] = {
        "bundle": str(bundle_path),
        "scene": scene,
        "config": report_config(config, serving),
        "horizons": horizons,
        "policies": {},
    }
    tokenizer_scores: dict[str, list] = {}
    for policy in scene_policies(scene, config.policies):
        real = real_rollouts(scene, policy, config, *frame_size(bundle))
        model = WorldModel.from_bundle(
            bundle_path, batch=config.episodes, model=serving.model, **config.dream.world_model_kwargs(serving)
        )
        report["dtype"] = str(model.dtype).removeprefix("torch.")
        dream = dream_rollouts(model, real, config)
        report["policies"][policy] = score_policy(scene, probe, real, dream, config, horizons)
        _tokenizer_scores(model, probe, scene, real, tokenizer_scores)
    report["tokenizer"] = {key: float(np.mean(values)) for key, values in tokenizer_scores.items()}
    report["all"] = average_policies(report["policies"])
    report["horizons"] = scored_horizons(horizons, report["all"]["model"])
    return report


def scene_policies(scene: str, policies: tuple[str, ...]) -> list[str]:
    """``policies`` as ``scene`` can run them: a scene without an expert (a ``gym:`` scene)
    scores held pushes (``push``, a controller's actions) where the expert would act."""
    if "goal" not in policies or scene_class(scene).has_expert:
        return list(policies)
    logger.info("scene %s has no expert: scoring the 'push' policy in place of 'goal'", scene)
    return list(dict.fromkeys("push" if policy == "goal" else policy for policy in policies))


def frame_size(bundle) -> tuple[int, int]:
    size = bundle.model_config("tokenizer", TokenizerConfig).image_size
    return size, size


def score_policy(scene, probe, real, dream, config, horizons) -> dict:
    k = config.context
    background = np.median(real["frames"][:, 0], axis=0).astype(np.uint8)
    truth = probe_targets(scene, real["states"])  # (E, L, d)
    scores: dict[str, dict] = {"model": {}, "copy_last": {}}  # per horizon; and the probe's floor
    for h in horizons:
        target = real["frames"][:, k + h - 1]
        valid = real["valid"][:, k + h - 1]
        if not valid.any():  # every episode had ended (a pole that fell): nothing to score this far
            continue
        for name, predicted in (("model", dream["frames"][:, h - 1]), ("copy_last", real["frames"][:, k - 1])):
            image = frame_scores(predicted, target, background)
            state = probe_errors(scene, probe.predict(predicted), truth[:, k + h - 1])
            entry = {key: float(v[valid].mean()) for key, v in {**image, **state}.items()}
            if name == "model":
                predicted_reward = dream["rewards"][:, h - 1].reshape(real["rewards"][:, k + h - 1].shape)  # (E, K) -> as real
                entry["reward_abs_error"] = float(np.abs(predicted_reward - real["rewards"][:, k + h - 1])[valid].mean())
                entry["termination_accuracy"] = float(
                    (dream["terminated"][:, h - 1] == real["terminated"][:, k + h - 1])[valid].mean()
                )
                entry["frame_mean"] = float(predicted.mean())
                entry["frame_std"] = float(predicted.std())
            else:
                entry["frame_mean"], entry["frame_std"] = float(target.mean()), float(target.std())  # the real frames
            scores[name][str(h)] = entry
    probe_floor = probe_errors(scene, probe.predict(real["frames"][:, k:]), truth[:, k:])
    scores["probe_on_real_frames"] = {key: float(v.mean()) for key, v in probe_floor.items()}
    return scores


@torch.inference_mode()
def _tokenizer_scores(model: WorldModel, probe, scene, real, into: dict) -> None:
    frames = real["frames"].reshape(-1, *real["frames"].shape[2:])
    truth = probe_targets(scene, {k: v.reshape(-1, v.shape[-1]) for k, v in real["states"].items()})
    recon = np.concatenate(
        [
            to_uint8(model.tokenizer(torch.from_numpy(frames[i : i + 256]).to(model.device))).cpu().numpy()
            for i in range(0, len(frames), 256)
        ]
    )
    background = np.median(frames[:: max(1, len(frames) // 256)], axis=0).astype(np.uint8)
    for key, value in frame_scores(recon, frames, background).items():
        into.setdefault(key, []).append(value.mean())
    for key, value in probe_errors(scene, probe.predict(recon), truth).items():
        into.setdefault(f"probe_{key}_reconstructed", []).append(value.mean())
    for key, value in probe_errors(scene, probe.predict(frames), truth).items():
        into.setdefault(f"probe_{key}_real", []).append(value.mean())


def average_policies(policies: dict) -> dict:
    """Each horizon averaged over the policies whose episodes reach it (a cartpole under
    uniform actions falls within ten steps; the balancing policy's episodes go on)."""
    out: dict[str, dict] = {}
    for name in ("model", "copy_last"):
        horizons = sorted({h for p in policies.values() for h in p[name]}, key=int)
        out[name] = {}
        for h in horizons:
            scored = [p[name][h] for p in policies.values() if h in p[name]]
            out[name][h] = {key: float(np.mean([entry[key] for entry in scored])) for key in scored[0]}
    return out


def scored_horizons(horizons: list[int], scores: dict) -> list[int]:
    """The horizons some episode reached."""
    return [h for h in horizons if str(h) in scores]


def summary_table(report: dict) -> str:
    """Markdown: all policies averaged, model beside copy-last-frame at each horizon."""
    scene = report["scene"]
    from worldenv.eval.probe import QUANTITIES

    probes = [q.name for q in QUANTITIES[scene]]
    head = ["horizon", "PSNR model", "PSNR copy", "SSIM model", "SSIM copy", "IoU model", "IoU copy"]
    head += [f"{p} model" for p in probes] + [f"{p} copy" for p in probes] + ["reward abs err"]
    rows = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for h in report["horizons"]:
        m, c = report["all"]["model"][str(h)], report["all"]["copy_last"][str(h)]
        cells = [
            str(h),
            f"{m['psnr']:.2f}",
            f"{c['psnr']:.2f}",
            f"{m['ssim']:.3f}",
            f"{c['ssim']:.3f}",
            f"{m['foreground_iou']:.3f}",
            f"{c['foreground_iou']:.3f}",
        ]
        cells += [f"{m[p]:.4f}" for p in probes] + [f"{c[p]:.4f}" for p in probes] + [f"{m['reward_abs_error']:.4f}"]
        rows.append("| " + " | ".join(cells) + " |")
    tokenizer = ", ".join(f"{k} {v:.4g}" for k, v in report["tokenizer"].items())
    guidance = report["config"].get("action_guidance", 1.0)
    guided = f", action guidance {guidance:g}" if guidance != 1.0 else ""
    guided += ", committing the re-encoded frame" if report["config"].get("commit") == "frame" else ""
    return "\n".join(
        [
            f"{scene}, {report['config']['model']}, {report['config']['sampling_steps']} "
            f"{report['config']['sampler']} steps{guided}, {report['config']['episodes']} episodes x "
            f"{len(report['policies'])} policies",
            "",
            *rows,
            "",
            f"tokenizer (same frames): {tokenizer}",
        ]
    )
