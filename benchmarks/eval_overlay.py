"""Several `worldenv eval` reports side by side: a markdown table of chosen metrics
at chosen horizons, and a PNG with one panel per metric, each report's model curve
(averaged over its action policies) against horizon, with the first report's
copy-last-frame baseline dotted.

    .venv/bin/python benchmarks/eval_overlay.py \\
        "history 4, 4000 steps=benchmarks/results/history16/drift/history4-4000steps.json" \\
        "history 16, 4000 steps=benchmarks/results/history16/drift/history16-4000steps.json" \\
        --columns psnr@1 joint_angles@5 joint_angles@15 target@25 target@50 \\
        --plot benchmarks/results/history16/drift/drift.png
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def parse_report(argument: str) -> tuple[str, dict]:
    label, separator, path = argument.rpartition("=")
    if not separator or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH to a worldenv eval report, got {argument!r}")
    return label, json.loads(Path(path).read_text())


def parse_column(argument: str) -> tuple[str, int]:
    metric, separator, horizon = argument.partition("@")
    if not separator or not horizon.isdigit():
        raise argparse.ArgumentTypeError(f"expected METRIC@HORIZON, e.g. psnr@5, got {argument!r}")
    return metric, int(horizon)


def score(report: dict, which: str, metric: str, horizon: int) -> float:
    """``which``: model or copy_last; averaged over the report's action policies."""
    by_horizon = report["all"][which]
    if str(horizon) not in by_horizon or metric not in by_horizon[str(horizon)]:
        known = sorted(next(iter(by_horizon.values())))
        raise ValueError(f"{metric}@{horizon}: the report has horizons {sorted(map(int, by_horizon))} and metrics {known}")
    return by_horizon[str(horizon)][metric]


def number(value: float) -> str:
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def table(reports: list[tuple[str, dict]], columns: list[tuple[str, int]]) -> str:
    names = [f"{metric} h{horizon}" for metric, horizon in columns]
    rows = [f"| report | {' | '.join(names)} |", f"| --- |{' ---: |' * len(columns)}"]
    for label, report in reports:
        rows.append(f"| {label} | " + " | ".join(number(score(report, "model", m, h)) for m, h in columns) + " |")
    first = reports[0][1]
    rows.append("| copy last frame | " + " | ".join(number(score(first, "copy_last", m, h)) for m, h in columns) + " |")
    return "\n".join(rows)


def plot(reports: list[tuple[str, dict]], metrics: list[str], path: Path) -> None:
    from worldenv.eval.probe import QUANTITIES

    units = {q.name: "rad" if q.kind == "angle" else "m" for q in QUANTITIES[reports[0][1]["scene"]]}
    units.update(psnr="dB")
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for label, report in reports:
            horizons = sorted(int(h) for h in report["all"]["model"])
            axis.plot(horizons, [score(report, "model", metric, h) for h in horizons], marker="o", markersize=3, label=label)
        first = reports[0][1]
        horizons = sorted(int(h) for h in first["all"]["copy_last"])
        axis.plot(horizons, [score(first, "copy_last", metric, h) for h in horizons], ":", color="black", label="copy last frame")
        axis.set_xscale("log")
        axis.set_xlabel("horizon (frames)")
        axis.set_title(metric.replace("_", " ") + (f" ({units[metric]})" if metric in units else ""))
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=parse_report, help="LABEL=PATH of a `worldenv eval --json` report")
    parser.add_argument(
        "--columns",
        nargs="+",
        type=parse_column,
        default=[("psnr", 1), ("psnr", 5)],
        help="METRIC@HORIZON entries of the table (default psnr@1 psnr@5)",
    )
    parser.add_argument("--plot", type=Path, help="write the PNG here: one panel per metric of --columns")
    args = parser.parse_args(argv)
    print(table(args.reports, args.columns))
    if args.plot:
        plot(args.reports, list(dict.fromkeys(metric for metric, _ in args.columns)), args.plot)


if __name__ == "__main__":
    main()
