"""One row of the recipe table: a variant's teacher scored against MuJoCo and the data.

- one-step error: latent MSE of the teacher's prediction of a held-out window's last
  frame in one evaluation from pure noise, with its clean context, over copy-last's;
- push gains at the table's steps (``worldenv.eval.action_response``) under constant pushes
  of +1 and -1 from rest;
- `worldenv eval`'s scores: PSNR margin over copy-last and the probe's error over
  copy-last's at each horizon, and the fade (the dream's pixel std over the real
  frames') at the longest;
- training speed: windows per second over the run (from its metrics log).
"""

import datetime
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldenv.io import atomic_write_json
from worldenv.recipes.table import RecipeTable, variant_teacher_section

logger = logging.getLogger(__name__)
PUSHES = (1.0, -1.0)
MARGIN_HORIZONS = (1, 5, 15)


START = "start"  # the row of the bundle every variant starts from, untrained further


def score_variant(table: RecipeTable, name: str) -> dict:
    """Score variant ``name``'s bundle (``START``: the table's start bundle) and write its
    row (``table.row_path``)."""
    from worldenv import config as configs
    from worldenv.training.teacher_task import TeacherTrainingConfig

    section = variant_teacher_section(table, next(iter(table.variants)) if name == START else name)
    teacher = configs.build(TeacherTrainingConfig, section, f"variants.{name}")
    bundle = Path(table.start) if name == START else Path(teacher.bundle)
    logger.info("variant %s: scoring %s", name, bundle)
    training = start_record(table) if name == START else training_record(Path(teacher.run), teacher.train.batch, bundle, table)
    from worldenv.checkpoint import hardware_description

    row = {
        "variant": name,
        "date": datetime.date.today().isoformat(),
        "machine": hardware_description(),
        "overrides": {} if name == START else table.variants[name],
        "bundle": str(bundle),
        "threads": table.threads,
        "budget_cpu_minutes": 0.0 if name == START else table.budget_cpu_minutes,
        "score": asdict(table.score),
        "training": training,
        "one_step": one_step_error(bundle, teacher, table.score.one_step_windows),
        "gains": push_gains_of(bundle, table),
        "eval": eval_scores(bundle, table),
    }
    atomic_write_json(table.row_path(name), row)
    return row


def start_cpu_hours(table: RecipeTable) -> float:
    """The campaign's CPU-hours behind a variant before its own training: the start
    bundle's stages that a variant's teacher builds on (its students are not; nor its
    teacher, for variants trained from fresh weights)."""
    from worldenv import campaign
    from worldenv.checkpoint import load_bundle

    kept = [
        s
        for s in campaign.stages(load_bundle(table.start).metadata)
        if not s["component"].startswith("student_") and (table.fine_tune or s["component"] != "teacher")
    ]
    return campaign.total_cpu_hours(kept)


def start_record(table: RecipeTable) -> dict:
    return {
        "steps": 0,
        "cpu_seconds": 0.0,
        "seconds": 0.0,
        "windows_per_second": None,
        "last_diffusion_loss": None,
        "campaign_cpu_hours": start_cpu_hours(table),
    }


def training_record(run: Path, batch: int, bundle: Path, table: RecipeTable) -> dict:
    """Steps, time and speed of the variant's run: the totals as its bundle recorded them,
    the speed between its first and last logged steps."""
    from worldenv.checkpoint import load_bundle

    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    first, last = lines[0], lines[-1]
    span = last["seconds"] - first["seconds"]
    recorded = load_bundle(bundle).metadata["teacher_training"]
    return {
        "steps": recorded["steps"],
        "cpu_seconds": recorded["train_cpu_seconds"],
        "seconds": recorded["train_seconds"],
        "windows_per_second": (last["step"] - first["step"]) * batch / span if span > 0 else None,
        "last_diffusion_loss": last.get("diffusion"),
        "campaign_cpu_hours": start_cpu_hours(table) + recorded["train_cpu_seconds"] / 3600.0,
    }


@torch.inference_mode()
def one_step_error(bundle_path: Path, teacher, windows: int = 256, seed: int = 0) -> dict:
    """Held-out windows of the variant's own data (``path``'s last episodes): the last
    frame predicted in one evaluation at t = 1 under the recorded actions."""
    from worldenv.checkpoint import load_bundle
    from worldenv.diffusion.flow import x0_from_velocity
    from worldenv.training.latent_windows import actions_before
    from worldenv.world_model import load_backbone, load_tokenizer

    bundle = load_bundle(bundle_path)
    tokenizer, backbone = load_tokenizer(bundle), load_backbone(bundle, "teacher").eval()
    data = teacher.data.load_held_out()
    length = backbone.config.context_frames
    rng = np.random.default_rng(seed)
    long_enough = np.flatnonzero(data.episode_lengths > length)
    episodes = rng.choice(long_enough, windows)
    starts = np.array([data.episode_starts[e] + rng.integers(0, data.episode_lengths[e] - length) for e in episodes])
    index = starts[:, None] + np.arange(length)
    frames, actions = torch.from_numpy(data.frames[index]), torch.from_numpy(data.actions[index])
    W, L = index.shape
    latents = tokenizer.encode(frames.flatten(0, 1)).reshape(W, L, -1, backbone.config.latent_channels)
    past = backbone.config.action_history - 1
    past_actions = torch.from_numpy(actions_before(data.actions, data.episode_starts, starts, past)) if past else None
    noise = torch.randn(latents[:, -1].shape, generator=torch.Generator().manual_seed(seed))
    times = torch.cat([torch.zeros(W, L - 1), torch.ones(W, 1)], dim=1)
    x = torch.cat([latents[:, :-1], noise[:, None]], dim=1)
    predicted = x0_from_velocity(noise, backbone(x, times, actions, past_actions=past_actions).velocity[:, -1], times[:, -1])
    truth = latents[:, -1]
    model = float((predicted - truth).square().mean())
    copy = float((latents[:, -2] - truth).square().mean())
    return {"windows": W, "model": model, "copy_last": copy, "ratio": model / copy}


def push_gains_of(bundle_path: Path, table: RecipeTable) -> dict:
    from worldenv.checkpoint import load_bundle
    from worldenv.envs.single import DiffusionWorldEnv
    from worldenv.eval.action_response import push_gains
    from worldenv.eval.probe import load_probe
    from worldenv.scenes import make_scene

    bundle = load_bundle(bundle_path)
    scene = bundle.metadata["scene"]
    dream = DiffusionWorldEnv(
        scene=scene, checkpoint=bundle_path, model="teacher", sampling_steps=table.score.sampling_steps, commit="latent"
    )
    truth = make_scene(scene, max_episode_steps=-1)
    try:
        gains = push_gains(
            dream, truth, load_probe(bundle), scene, PUSHES, table.score.gain_starts, 4, tuple(table.score.gain_steps)
        )
    finally:
        dream.close()
        truth.close()
    return {str(step): values for step, values in gains.items()}


def eval_scores(bundle_path: Path, table: RecipeTable) -> dict:
    from worldenv.dream_config import DreamConfig
    from worldenv.eval.evaluate import EvalConfig, evaluate

    s = table.score
    dream = DreamConfig(model="teacher", sampling_steps=s.sampling_steps, action_guidance=1.0, commit="latent", dtype="float32")
    report = evaluate(bundle_path, EvalConfig(episodes=s.episodes, horizon=s.horizon, dream=dream))
    model, copy = report["all"]["model"], report["all"]["copy_last"]
    probes = [key for key in report["policies"][next(iter(report["policies"]))]["probe_on_real_frames"]]
    out: dict[str, Any] = {
        "horizons": {},
        "probe_on_real_frames": {
            key: float(np.mean([p["probe_on_real_frames"][key] for p in report["policies"].values()])) for key in probes
        },
    }
    for h in [h for h in (*MARGIN_HORIZONS, s.horizon) if str(h) in model]:
        m, c = model[str(h)], copy[str(h)]
        out["horizons"][str(h)] = {
            "psnr": m["psnr"],
            "psnr_copy": c["psnr"],
            "psnr_margin": m["psnr"] - c["psnr"],
            **{f"{key}_ratio": m[key] / max(c[key], 1e-12) for key in probes},
            **{key: m[key] for key in probes},
            "pixel_std": m["frame_std"],
            "pixel_std_real": c["frame_std"],
            "fade": m["frame_std"] / c["frame_std"],
        }
    return out
