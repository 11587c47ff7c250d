"""Quality against speed, in one run: several models of one bundle (the teacher at
several step counts, the students) on the *same* MuJoCo episodes and actions, each
also timed as a dream env on this machine, beside the copy-last-frame baseline.

    worldenv compare --checkpoint checkpoints/reacher \\
        --models teacher@4 teacher@8 teacher@16 teacher@32 student_consistency@1 student_consistency@2

An entry is a ``Serving`` written out (``worldenv/serving.py``): ``component@steps``,
``component@stepsgG`` (action guidance G) and ``...+frame`` (committing the
re-encoded frame), e.g. ``student_consistency@1g1.8+frame``.
"""

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from worldenv.checkpoint import load_bundle
from worldenv.dream_config import report_config
from worldenv.eval.bench import dream_speed
from worldenv.eval.evaluate import (
    EvalConfig,
    average_policies,
    dream_rollouts,
    frame_size,
    real_rollouts,
    score_policy,
    scored_horizons,
)
from worldenv.eval.probe import QUANTITIES, load_probe
from worldenv.serving import Serving
from worldenv.world_model import WorldModel

logger = logging.getLogger(__name__)
REPORTED_HORIZONS = (1, 10, 50, 200)


def compare(
    bundle_path: Path,
    entries: list[Serving],
    config: EvalConfig,
    speed_envs: tuple[int, ...] = (1, 16),
    speed_seconds: float = 3.0,
) -> dict:
    """Each of ``entries`` served with ``config.dream``'s sampler, device and dtype (its own
    serving fields are the entry's)."""
    bundle = load_bundle(Path(bundle_path))
    scene = bundle.scene
    for entry in entries:
        bundle.config(entry.model)  # a missing component fails now, naming what the bundle has
    probe = load_probe(bundle)
    horizons = [h for h in REPORTED_HORIZONS if h <= config.horizon]
    reals = {policy: real_rollouts(scene, policy, config, *frame_size(bundle)) for policy in config.policies}
    report: dict[str, Any] = {
        "bundle": str(bundle_path),
        "scene": scene,
        "config": report_config(config, None),
        "horizons": horizons,
        "models": {},
    }
    for entry in entries:
        logger.info("scoring %s", entry.name)
        dream = replace(config.dream, **entry.record())
        policies = {}
        for policy, real in reals.items():
            world = WorldModel.from_bundle(
                bundle_path, batch=config.episodes, model=entry.model, **dream.world_model_kwargs(entry)
            )
            report["dtype"] = str(world.dtype).removeprefix("torch.")
            policies[policy] = score_policy(scene, probe, real, dream_rollouts(world, real, config), config, horizons)
        scores = average_policies(policies)
        speeds = {n: dream_speed(bundle_path, n, dream, speed_seconds) for n in speed_envs}
        report["models"][entry.name] = {
            **entry.record(),
            "steps": entry.sampling_steps,
            "evaluations": entry.evaluations,
            "scores": scores["model"],
            "speed": {str(n): s for n, s in speeds.items()},
        }
        report["copy_last"] = scores["copy_last"]
        report["horizons"] = scored_horizons(horizons, scores["model"])
    return report


def comparison_table(report: dict) -> str:
    quantity = QUANTITIES[report["scene"]][0].name
    horizons = report["horizons"]
    speeds = list(next(iter(report["models"].values()))["speed"])
    head = [
        "model",
        "steps",
        "evaluations per frame",
        *(f"ms/frame, batch {n}" for n in speeds[:1]),
        *(f"env-steps/s, batch {n}" for n in speeds[1:]),
        *(f"PSNR h{h}" for h in horizons),
        *(f"SSIM h{h}" for h in horizons[1:2]),
        *(f"{quantity} h{h}" for h in horizons),
        *(f"reward err h{h}" for h in horizons[1:3]),
    ]
    rows = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]

    def scores(values: dict) -> list[str]:
        # The reward head's error: what an agent trained in the dream is scored by (copy-last has none).
        rewards = [
            f"{values[str(h)]['reward_abs_error']:.3f}" if "reward_abs_error" in values[str(h)] else "-" for h in horizons[1:3]
        ]
        return (
            [f"{values[str(h)]['psnr']:.2f}" for h in horizons]
            + [f"{values[str(h)]['ssim']:.3f}" for h in horizons[1:2]]
            + [f"{values[str(h)][quantity]:.3f}" for h in horizons]
            + rewards
        )

    for entry in report["models"].values():
        speed = entry["speed"]
        guidance, commit = entry.get("action_guidance", 1.0), entry.get("commit", "latent")
        model = (
            entry["model"]
            + (f" (action guidance {guidance:g})" if guidance != 1.0 else "")
            + (" (commits the frame)" if commit == "frame" else "")
        )
        evaluations = entry.get("evaluations", entry["steps"] + 1)
        cells = [
            model,
            str(entry["steps"]),
            str(evaluations),
            f"{speed[speeds[0]]['ms_per_step']:.1f}",
            *(f"{speed[n]['env_steps_per_s']:.0f}" for n in speeds[1:]),
            *scores(entry["scores"]),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    rows.append(
        "| copy last frame | - | 0 | - |" + " - |" * (len(speeds) - 1) + " " + " | ".join(scores(report["copy_last"])) + " |"
    )
    c = report["config"]
    return "\n".join(
        [
            f"{report['scene']}: {c['episodes']} episodes x {len(c['policies'])} policies, the same for every "
            f"model; {c['sampler']} sampler; networks in {report.get('dtype', 'float32')}; speed: dream env on this "
            "machine",
            "",
            *rows,
        ]
    )


def plot_frontier(report: dict, path: Path, horizon: int = 10) -> None:
    """PSNR at ``horizon`` against milliseconds per frame (batch 1): the quality-speed frontier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    from worldenv.io import atomic_write

    key = str(horizon if horizon in report["horizons"] else report["horizons"][-1])
    figure, axis = plt.subplots(figsize=(8, 4))
    speed_key = next(iter(next(iter(report["models"].values()))["speed"]))
    # Named in a legend, not beside the points: models of one speed and quality (two 1-step
    # students) would write their names over each other.
    for index, (name, entry) in enumerate(report["models"].items()):
        x, y = entry["speed"][speed_key]["ms_per_step"], entry["scores"][key]["psnr"]
        axis.scatter([x], [y], color=f"C{index % 10}", marker="osD^v"[index // 10 % 5], label=name)
    axis.axhline(report["copy_last"][key]["psnr"], color="grey", linestyle=":", label="copy last frame")
    axis.set_xscale("log")
    axis.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 3, 5)))
    axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    axis.set_xlabel(f"ms per frame (dream env, batch {speed_key}, this machine)")
    axis.set_ylabel(f"PSNR at horizon {key} (dB)")
    axis.set_title(f"{report['scene']}: quality against speed")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.tight_layout()
    atomic_write(Path(path), lambda tmp: figure.savefig(tmp, dpi=110))
    plt.close(figure)
