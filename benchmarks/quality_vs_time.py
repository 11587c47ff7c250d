"""Fidelity of a teacher against its training time: evaluate EMA weights saved
at several points of one run (copies of its ``state.safetensors``) with the
bundle's tokenizer and probe, in one run, beside copy-last-frame
(``worldenv.eval.training_snapshots``).

    .venv/bin/python benchmarks/quality_vs_time.py --bundle checkpoints/reacher --config configs/reacher.yaml \\
        --snapshots runs/snapshots/teacher-*.safetensors --episodes 4 --horizon 25 \\
        --out benchmarks/results/reacher_quality_vs_time
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from worldenv.checkpoint import load_bundle  # noqa: E402
from worldenv.dream_config import DreamConfig  # noqa: E402
from worldenv.eval.evaluate import EvalConfig  # noqa: E402
from worldenv.eval.probe import QUANTITIES  # noqa: E402
from worldenv.eval.training_snapshots import snapshot_scores  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True, help="the preset the teacher was trained with")
    parser.add_argument("--snapshots", type=Path, nargs="+", required=True)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=25)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True, help="prefix of the .json and .png written")
    args = parser.parse_args()
    scene = load_bundle(args.bundle).metadata["scene"]
    quantities = [q.name for q in QUANTITIES[scene]]
    config = EvalConfig(
        episodes=args.episodes,
        horizon=args.horizon,
        dream=DreamConfig(model="teacher", sampling_steps=args.steps, action_guidance=1.0, commit="latent"),
    )
    rows = snapshot_scores(args.bundle, args.config, args.snapshots, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    horizons = [h for h in (1, 5, 10, 25) if h <= args.horizon]
    figure, axes = plt.subplots(1, 1 + len(quantities), figsize=(4 * (1 + len(quantities)), 3.4))
    for axis, metric in zip(axes, ["psnr", *quantities]):
        for index, h in enumerate(horizons):
            minutes = [r["minutes"] for r in rows]
            axis.plot(minutes, [r["all"]["model"][str(h)][metric] for r in rows], "-o", color=f"C{index}", label=f"h={h}")
            axis.axhline(rows[-1]["all"]["copy_last"][str(h)][metric], color=f"C{index}", linestyle=":")
        axis.set_xlabel("teacher training, wall-clock minutes (2 CPU cores)")
        axis.set_title(metric.replace("_", " ") + " (dotted: copy-last)")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(args.out.with_suffix(".png"), dpi=110)
    print(
        "| step | minutes | "
        + " | ".join(f"PSNR h={h}" for h in horizons)
        + " | "
        + " | ".join(f"{q} h={h}" for q in quantities for h in horizons)
        + " |"
    )
    for r in rows:
        cells = [str(r["step"]), f"{r['minutes']:.1f}"] + [f"{r['all']['model'][str(h)]['psnr']:.2f}" for h in horizons]
        cells += [f"{r['all']['model'][str(h)][q]:.4f}" for q in quantities for h in horizons]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
