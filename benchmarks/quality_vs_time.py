"""Fidelity of a teacher against its training time: evaluate EMA weights saved
at several points of one run (copies of its ``state.safetensors``) with the
bundle's tokenizer and probe, in one run, beside copy-last-frame.

    .venv/bin/python benchmarks/quality_vs_time.py --bundle checkpoints/reacher --config configs/reacher.yaml \\
        --snapshots runs/snapshots/teacher-*.safetensors --episodes 4 --horizon 25 --out benchmarks/results/reacher_quality_vs_time
"""

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from worldenv import config as configs  # noqa: E402
from worldenv.checkpoint import load_bundle, save_bundle  # noqa: E402
from worldenv.dream_config import DreamConfig  # noqa: E402
from worldenv.eval.evaluate import EvalConfig, evaluate  # noqa: E402
from worldenv.nn.backbone import Backbone, BackboneConfig  # noqa: E402
from worldenv.eval.probe import QUANTITIES, StateProbe  # noqa: E402
from worldenv.state_io import load_tree  # noqa: E402
from worldenv.training.teacher_task import TeacherTrainingConfig  # noqa: E402
from worldenv.world_model import load_tokenizer  # noqa: E402


def snapshot_bundle(bundle_path: Path, teacher_config: dict, snapshot: Path, into: Path) -> dict:
    bundle = load_bundle(bundle_path)
    tokenizer = load_tokenizer(bundle)
    probe = StateProbe(bundle.config("probe")["outputs"])
    bundle.load_into("probe", probe)
    teacher = Backbone(configs.build(BackboneConfig, teacher_config["model"], "teacher"))
    state = load_tree(snapshot)
    teacher.load_state_dict(state["ema"])
    save_bundle(into, {"tokenizer": (tokenizer, bundle.config("tokenizer")), "teacher": (teacher, teacher_config),
                       "probe": (probe, bundle.config("probe"))}, metadata=bundle.metadata)
    return {"step": state["step"], "minutes": state["seconds"] / 60}


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
    config = EvalConfig(episodes=args.episodes, horizon=args.horizon,
                        dream=DreamConfig(model="teacher", sampling_steps=args.steps, action_guidance=1.0, commit="latent"))
    trained = configs.load(args.config, "teacher", TeacherTrainingConfig)
    teacher_config = {"model": asdict(trained.model), "context_noise": trained.context_noise}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for snapshot in sorted(args.snapshots, key=lambda p: load_tree(p)["step"]):
            info = snapshot_bundle(args.bundle, teacher_config, snapshot, Path(tmp) / snapshot.stem)
            report = evaluate(Path(tmp) / snapshot.stem, config)
            rows.append({**info, "all": report["all"]})
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
    print("| step | minutes | " + " | ".join(f"PSNR h={h}" for h in horizons) + " | " +
          " | ".join(f"{q} h={h}" for q in quantities for h in horizons) + " |")
    for r in rows:
        cells = [str(r["step"]), f"{r['minutes']:.1f}"] + [f"{r['all']['model'][str(h)]['psnr']:.2f}" for h in horizons]
        cells += [f"{r['all']['model'][str(h)][q]:.4f}" for q in quantities for h in horizons]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
