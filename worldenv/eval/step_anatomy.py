"""Where a dream step's time goes: network evaluations, the tokenizer's decode and encode,
and the rest, for each way of serving a bundle, measured side by side in one run
(``benchmarks/step_anatomy.py`` is its command line).

A dreamed frame costs ``evaluations`` backbone passes (each sampling step, and the commit
of the clean frame to the KV cache), one decode (the frame the user sees) and, when the
frame is committed re-encoded (``+frame``), one encode. The per-frame speed-up of a
few-step student over its teacher is therefore bounded by the parts both pay: each part
is timed alone at the same batch, and the bound is reported beside the measured ratio.
Rounds interleave the models, so a drift of the machine's speed reaches all of them
alike; each cell is the median over rounds.
"""

import statistics
import time
from pathlib import Path
from typing import Any

import torch

from worldenv.checkpoint import load_bundle
from worldenv.contexts import load_start_contexts
from worldenv.eval.bench import machine
from worldenv.serving import Serving
from worldenv.world_model import WorldModel, frames_to_latents, latents_to_frames

PARTS = ("step", "evaluation", "decode", "encode")


def seconds_per_call(fn, calls: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


class Anatomy:
    """One served dream at batch ``envs``, primed from the bundle's real start contexts."""

    def __init__(self, checkpoint: Path, serving: Serving, envs: int, dtype: str):
        self.serving = serving
        self.model = WorldModel.from_bundle(checkpoint, envs, model=serving.model, dtype=dtype, **serving.world_model_kwargs())
        starts = load_start_contexts(load_bundle(checkpoint))
        rows = torch.arange(envs) % len(starts.frames)
        self.model.reset(starts.frames[rows], starts.actions[rows], seeds=rows)
        self.actions = torch.zeros(envs, self.model.backbone.config.action_dim)
        for _ in range(3):  # fill the cache's window, as a running dream has it
            self.model.step(self.actions)

    @torch.inference_mode()
    def time_parts(self, calls: int) -> dict[str, float]:
        """Milliseconds per call of each part at the dream's current cache."""
        model, envs = self.model, self.actions.shape[0]
        latent = torch.randn(envs, *model.latent_shape)
        frames = latents_to_frames(model.tokenizer, latent)
        x = latent[:, None].to(model.dtype)
        t = torch.ones(envs, 1, dtype=model.dtype)
        action = self.actions[:, None].to(model.dtype)
        parts = {
            "step": lambda: model.step(self.actions),
            "evaluation": lambda: model.backbone(x, t, action, model.cache, model.state, fast=model.fast),
            "decode": lambda: latents_to_frames(model.tokenizer, latent),
            "encode": lambda: frames_to_latents(model.tokenizer, frames, model.dtype),
        }
        return {name: 1000 * seconds_per_call(fn, calls) for name, fn in parts.items()}


def anatomy_report(
    checkpoint: Path, models: list[Serving], reference: Serving, envs: int, dtype: str, rounds: int, calls: int
) -> dict:
    served = {s.name: Anatomy(checkpoint, s, envs, dtype) for s in dict.fromkeys([*models, reference])}  # in order, once each
    samples: dict[str, dict[str, list[float]]] = {name: {part: [] for part in PARTS} for name in served}
    for _ in range(rounds):
        for name, anatomy in served.items():
            for part, milliseconds in anatomy.time_parts(calls).items():
                samples[name][part].append(milliseconds)
    rows: dict[str, dict[str, Any]] = {}
    for name, anatomy in served.items():
        ms = {part: statistics.median(values) for part, values in samples[name].items()}
        serving = anatomy.serving
        tokenizer = ms["decode"] + (ms["encode"] if serving.commit == "frame" else 0.0)
        rows[name] = {
            **ms,
            "evaluations": serving.evaluations,
            "depth": anatomy.model.backbone.config.depth,
            "networks": serving.evaluations * ms["evaluation"],
            "tokenizer": tokenizer,
            "rest": ms["step"] - serving.evaluations * ms["evaluation"] - tokenizer,
        }
    ref = rows[reference.name]["step"]
    for row in rows.values():
        row["speedup"] = ref / row["step"]
        # The same dream with its network passes free: what its decode (and encode) alone allow.
        row["speedup_bound"] = ref / (row["tokenizer"] + max(row["rest"], 0.0))
    return {
        "checkpoint": str(checkpoint),
        "envs": envs,
        "dtype": dtype,
        "rounds": rounds,
        "calls": calls,
        "reference": reference.name,
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "models": {s.name: rows[s.name] for s in models},
    }


def anatomy_table(report: dict) -> str:
    head = (
        "| model | blocks | evaluations per frame | ms per step | ms per evaluation | networks | decode | encode (committed) "
        f"| rest | vs {report['reference']} | bound with free networks |"
    )
    lines = [head, "| --- " + "| ---: " * 10 + "|"]
    for name, r in report["models"].items():
        encode = f"{r['encode']:.2f}" if "+frame" in name else "-"
        lines.append(
            f"| {name} | {r['depth']} | {r['evaluations']} | {r['step']:.2f} | {r['evaluation']:.2f} | "
            f"{r['networks']:.2f} | {r['decode']:.2f} | {encode} | {r['rest']:.2f} | "
            f"{r['speedup']:.2f}x | {r['speedup_bound']:.1f}x |"
        )
    return "\n".join(lines)
