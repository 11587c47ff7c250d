"""PNG plots of evaluation reports (matplotlib, headless)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from worldenv.io import atomic_write  # noqa: E402


def plot_horizon_curves(report: dict, path: Path) -> None:
    """One panel per metric: model vs copy-last-frame against horizon, per action policy."""
    from worldenv.eval.evaluate import scored_horizons

    policies = report["policies"]
    first = next(iter(policies.values()))
    metrics = [key for key in first["model"][str(report["horizons"][0])] if key in first["copy_last"][str(report["horizons"][0])]]
    metrics = [m for m in metrics if not m.startswith("frame_")]
    from worldenv.eval.probe import QUANTITIES

    units = {q.name: "rad" if q.kind == "angle" else "m" for q in QUANTITIES[report["scene"]]}
    units.update(psnr="dB")
    figure, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for index, (policy, scores) in enumerate(policies.items()):
            colour = f"C{index}"
            reached = scored_horizons(report["horizons"], scores["model"])  # where its episodes went
            for name, style in (("model", "-"), ("copy_last", ":")):
                values = [scores[name][str(h)][metric] for h in reached]
                axis.plot(
                    reached,
                    values,
                    style,
                    color=colour,
                    marker="o",
                    markersize=3,
                    label=f"{policy} {'model' if name == 'model' else 'copy last'}",
                )
        axis.set_xscale("log")
        axis.set_xlabel("horizon (frames)")
        axis.set_title(metric.replace("_", " ") + (f" ({units[metric]})" if metric in units else ""))
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(
        f"{report['scene']}: dream vs MuJoCo ({report['config']['model']}, "
        f"{report['config']['sampling_steps']} {report['config']['sampler']} steps); dotted: copy-last-frame"
    )
    figure.tight_layout()
    atomic_write(Path(path), lambda tmp: figure.savefig(tmp, dpi=110))
    plt.close(figure)


def plot_training_curve(metrics_path: Path, path: Path) -> None:
    """Every logged loss term of a run against wall-clock time (log scale)."""
    import json

    rows = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line]
    if not rows:
        return
    skip = {"step", "seconds", "lr", "grad_norm"}
    keys = [k for k in rows[-1] if k not in skip and isinstance(rows[-1][k], (int, float))]
    minutes = [row["seconds"] / 60 for row in rows]
    figure, axis = plt.subplots(figsize=(6, 3.6))
    for key in keys:
        axis.plot(minutes, [row.get(key, float("nan")) for row in rows], label=key, linewidth=1)
    axis.set_yscale("log")
    axis.set_xlabel(f"wall-clock minutes (step {rows[-1]['step']} at the end)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    axis.set_title(Path(metrics_path).parent.name)
    figure.tight_layout()
    atomic_write(Path(path), lambda tmp: figure.savefig(tmp, dpi=110))
    plt.close(figure)


def plot_revisits(report: dict, path: Path) -> None:
    """The memory suite: PSNR and state-probe error of the revisited view against frames away, per cache."""
    away = report["config"]["away"]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, scores in report["caches"].items():
        axes[0].plot(away, [scores[str(t)]["psnr"] for t in away], marker="o", label=name)
        axes[1].plot(away, [scores[str(t)]["objects_in_view"] for t in away], marker="o", label=name)
    floor = report.get("probe_on_real_frames")
    if floor:
        axes[1].plot(away, [floor[str(t)]["objects_in_view"] for t in away], "k:", label="probe on MuJoCo's frames")
        axes[1].legend(fontsize=8)
    for axis, title in zip(axes, ("PSNR of the revisited view (dB)", "state probe: objects in view, error (m)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("frames turned away (T)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    c = report["config"]
    figure.suptitle(
        f"panorama: turn away for T frames and back ({c['model']}, {c['sampling_steps']} steps, {c['episodes']} episodes)"
    )
    figure.tight_layout()
    atomic_write(Path(path), lambda tmp: figure.savefig(tmp, dpi=110))
    plt.close(figure)
