"""Speed measurements, printed as markdown tables. Every number comes from a
run of these functions; BENCHMARKS.md records which command, machine and date."""

import os
import platform
import time
from pathlib import Path
from typing import Any

from worldenv.dream_config import DreamConfig
from worldenv.scenes import SCENES, make_scene, unwrapped_scene


def machine() -> str:
    cpu = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def scene_speed(name: str, steps: int, antialiasing: bool = True) -> float:
    """Step+render frames per second of one scene in this process (random actions)."""
    env = unwrapped_scene(make_scene(name, max_episode_steps=-1))
    if not antialiasing:
        env.model.vis.quality.offsamples = 0
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    for action in actions[:50]:  # warm-up: the first render creates the GL context
        env.step(action)
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    seconds = time.perf_counter() - start
    env.close()
    return steps / seconds


def physics_speed(name: str, steps: int) -> float:
    """Physics-only steps per second (no rendering), for scale."""
    import mujoco

    env = unwrapped_scene(make_scene(name))
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(env.model, env.data, nstep=env.frame_skip)
    seconds = time.perf_counter() - start
    env.close()
    return steps / seconds


def scenes_table(steps: int = 2000) -> str:
    rows = [
        "| scene | step+render frames/s (4x MSAA, as shipped) | without MSAA | physics only steps/s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in SCENES:
        shipped, aliased = scene_speed(name, steps), scene_speed(name, steps, antialiasing=False)
        rows.append(f"| {name} | {shipped:.0f} | {aliased:.0f} | {physics_speed(name, steps * 5):.0f} |")
    return "\n".join([f"machine: {machine()}; 64x64 frames, 1 process", "", *rows])


def sampler_table(dataset: Path, length: int = 16, batch: int = 32, seconds: float = 3.0) -> str:
    from worldenv.data.dataset import load_dataset
    from worldenv.data.sampler import WindowSampler

    start = time.perf_counter()
    data = load_dataset(dataset)
    load_seconds = time.perf_counter() - start
    sampler = WindowSampler(data, length, seed=0)
    sampler.sample(batch)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sampler.sample(batch)
        count += 1
    rate = count * batch / (time.perf_counter() - start)
    return "\n".join(
        [
            f"machine: {machine()}",
            "",
            "| dataset | frames | verify+load s | window length | batch | windows/s | frames/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {dataset} | {data.num_frames} | {load_seconds:.1f} | {length} | {batch} | {rate:.0f} | {rate * length:.0f} |",
        ]
    )


class DreamTimer:
    """One batched dream served as ``config`` says, timed as often as asked:
    ``DiffusionWorldVectorEnv.step``, observations copied to numpy as a user receives
    them. Two warm-up steps, one to size a measurement of about ``seconds`` (at least
    3 steps)."""

    def __init__(self, checkpoint: Path | None, num_envs: int, config: DreamConfig, seconds: float = 6.0):
        import numpy as np

        from worldenv.envs.dream import require_open
        from worldenv.envs.vector import DiffusionWorldVectorEnv

        self.config = config
        self.envs = DiffusionWorldVectorEnv(num_envs, checkpoint=checkpoint, max_episode_steps=10**9, config=config)
        self.envs.reset(seed=0)
        self.serving, self.rng = require_open(self.envs.dream, "DreamTimer").serving, np.random.default_rng(0)
        self._run(2)
        self.steps = max(3, int(seconds / self._run(1)))

    def _run(self, steps: int) -> float:
        shape = (steps, self.envs.num_envs, *self.envs.single_action_space.shape)  # the batched action space's
        actions = self.rng.uniform(-1, 1, shape).astype("float32")
        start = time.perf_counter()
        for action in actions:
            self.envs.step(action)  # returns numpy observations: the host waits for each step
        return time.perf_counter() - start

    def env_steps_per_s(self) -> float:
        return self.envs.num_envs * self.steps / self._run(self.steps)

    def record(self, env_steps_per_s: float) -> dict:
        return {
            "envs": self.envs.num_envs,
            "env_steps_per_s": env_steps_per_s,
            "ms_per_step": 1000 * self.envs.num_envs / env_steps_per_s,
            "evaluations": self.serving.evaluations,
            "gflop_per_env_step": _step_flops(self.envs) / self.envs.num_envs / 1e9,
        }


def dream_speed(checkpoint: Path | None, num_envs: int, config: DreamConfig, seconds: float = 6.0) -> dict:
    """Env-steps per second of the batched dream served as ``config`` says (``DreamTimer``), measured once."""
    timer = DreamTimer(checkpoint, num_envs, config, seconds)
    return timer.record(timer.env_steps_per_s())


def _step_flops(envs) -> float:
    """FLOPs of one batched model step (sampling, commit, decoding), counted by torch."""
    import numpy as np
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        envs.dream.model.step(np.zeros((envs.num_envs, *envs.single_action_space.shape), np.float32))
    return counter.get_total_flops()


def dream_report(
    configs: list[DreamConfig],
    checkpoint: Path | None = None,
    batches=(1, 16, 64, 256),
    seconds: float = 6.0,
    scene_steps: int = 1000,
    rounds: int = 1,
) -> dict:
    """The dream served as each of ``configs`` (on one device) at several batch sizes beside
    MuJoCo step+render of the same scene, in one run. With ``rounds`` > 1 MuJoCo and every
    dream are measured in turn that many times: the speeds are medians, and each dream's
    ratio to MuJoCo is the median of the rounds' ratios, with their range (a shared
    machine's speed drifts by several percent over a minute, more than a ratio measured
    once can tell apart)."""
    import statistics

    import torch

    from worldenv.checkpoint import load_bundle, shipped_checkpoint
    from worldenv.envs.dream import DEFAULT_SCENE
    from worldenv.world_model import resolve_dtype

    if rounds < 1:
        raise ValueError(f"rounds: expected a positive integer, got {rounds}")
    devices = {config.device for config in configs}
    if len(devices) != 1:
        raise ValueError(f"expected configs on one device (the report names one), got {sorted(devices)}")
    (device,) = devices
    scene = load_bundle(checkpoint or shipped_checkpoint(DEFAULT_SCENE)).scene
    timers = []
    for config in configs:
        name = str(resolve_dtype(config.dtype, device)).removeprefix("torch.")
        timers += [(name, DreamTimer(checkpoint, n, config, seconds)) for n in batches]
    mujoco: list[float] = []
    speeds: list[list[float]] = [[] for _ in timers]
    for _ in range(rounds):
        mujoco.append(scene_speed(scene, scene_steps))
        for measured, (_, timer) in zip(speeds, timers):
            measured.append(timer.env_steps_per_s())
    report: dict[str, Any] = {
        "machine": machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "scene": scene,
        "device": device + (f" ({torch.cuda.get_device_name(0)})" if device != "cpu" else ""),
        "mujoco_env_steps_per_s": statistics.median(mujoco),
        "rounds": rounds,
        "mujoco_rounds": mujoco,
        "dreams": [],
    }
    for measured, (name, timer) in zip(speeds, timers):
        ratios = [dream / real for dream, real in zip(measured, mujoco)]
        report["dreams"].append(
            {
                "serving": timer.serving.name,
                "dtype": name,
                "compile": timer.config.compile,
                "observation": timer.config.observation,
                **timer.record(statistics.median(measured)),
                "rounds": measured,
                "vs_mujoco": statistics.median(ratios),
                "vs_mujoco_range": [min(ratios), max(ratios)],
            }
        )
    return report


def dream_table(report: dict, settings: bool = True) -> str:
    """``dream_report`` as a markdown table, MuJoCo first; with ``settings``, the compile and
    observation columns where some row is not the default."""
    mujoco_fps = report["mujoco_env_steps_per_s"]
    rounds = report.get("rounds", 1)
    rows = [
        f"machine: {report['machine']}; torch {report['torch']}, {report['threads']} threads; scene {report['scene']}; "
        f"device {report['device']}"
        + (f"; medians of {rounds} interleaved rounds (the ratio's range in brackets)" if rounds > 1 else ""),
        "",
        "| world | dtype | envs | network evaluations per frame | env-steps/s | ms per step | vs MuJoCo "
        "| GFLOP per env-step | GFLOP/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| MuJoCo step+render (1 process) | - | 1 | - | {mujoco_fps:.0f} | {1000 / mujoco_fps:.2f} | 1.00 | - | - |",
    ]
    for r in report["dreams"]:
        ratio = f"{r.get('vs_mujoco', r['env_steps_per_s'] / mujoco_fps):.2f}"
        if rounds > 1:
            ratio += " ({:.2f}-{:.2f})".format(*r["vs_mujoco_range"])
        rows.append(
            f"| {r['serving']} | {r['dtype']} | {r['envs']} | {r['evaluations']} | {r['env_steps_per_s']:.0f} | "
            f"{r['ms_per_step']:.1f} | {ratio} | "
            f"{r['gflop_per_env_step']:.2f} | {r['gflop_per_env_step'] * r['env_steps_per_s']:.0f} |"
        )
    if settings and any(r.get("compile") or r.get("observation", "pixels") != "pixels" for r in report["dreams"]):
        rows[2] += " compile | observation |"
        rows[3] += " --- | --- |"
        rows[4] += " - | - |"
        for index, r in enumerate(report["dreams"]):
            rows[5 + index] += f" {'on' if r['compile'] else 'off'} | {r['observation']} |"
    return "\n".join(rows)


# ---- every world of a bundle: speed beside fidelity, in one run --------------------------
BEST_TEACHER = 16  # the teacher's best-fidelity sampling steps (docs/results.md)


def bundle_worlds(checkpoint: Path) -> list:
    """The ways of serving a bundle that the speed table compares: its served dream, the
    teacher at its best fidelity (``BEST_TEACHER`` steps) and each student at one step
    (as the served one commits where it is the served student, else the latent)."""
    from worldenv.checkpoint import load_bundle
    from worldenv.serving import Serving, serving_choice

    bundle = load_bundle(checkpoint)
    served = serving_choice(bundle.metadata)
    worlds = [served, Serving("teacher", BEST_TEACHER)]
    students = [name for name in bundle.components if name.startswith("student") and bundle.class_name(name) == "Backbone"]
    worlds += [Serving(name, 1) for name in students]
    return list(dict.fromkeys(worlds))  # the served one once


def fidelity(checkpoint: Path, serving, episodes: int, horizon: int, gain_starts: int, device: str = "cpu") -> dict:
    """PSNR at horizons 1 and 10 (``evaluate``, float32, ``episodes`` per action policy) and
    the action gain of the scene's first probe quantity after 10 pushed steps
    (``action_response.push_gains``; 1: as MuJoCo)."""
    from worldenv.checkpoint import load_bundle
    from worldenv.envs.single import DiffusionWorldEnv
    from worldenv.eval.action_response import push_gains
    from worldenv.eval.evaluate import EvalConfig, evaluate
    from worldenv.eval.probe import QUANTITIES, load_probe

    dream = DreamConfig(**serving.record(), dtype="float32", device=device)
    report = evaluate(checkpoint, EvalConfig(episodes=episodes, horizon=horizon, dream=dream))
    psnr = {f"psnr_h{h}": report["all"]["model"][str(h)]["psnr"] for h in (1, 10) if str(h) in report["all"]["model"]}
    bundle = load_bundle(checkpoint)
    quantity, steps = QUANTITIES[bundle.scene][0].name, min(10, horizon)
    env, truth = DiffusionWorldEnv(checkpoint=checkpoint, config=dream), make_scene(bundle.scene, max_episode_steps=-1)
    try:
        gains = push_gains(env, truth, load_probe(bundle), bundle.scene, (1.0, -1.0), gain_starts, 4, (steps,))
    finally:
        env.close()
        truth.close()
    return {**psnr, "action_gain": gains[steps][quantity], "gain_of": f"{quantity}, step {steps}"}


def worlds_report(
    checkpoint: Path,
    batches=(1, 16, 64, 256),
    dtypes=("float32", "bfloat16"),
    seconds: float = 6.0,
    rounds: int = 1,
    episodes: int = 2,
    horizon: int = 10,
    gain_starts: int = 2,
    settings: tuple[dict, ...] = ({},),
    scene_steps: int = 1000,
    device: str = "cpu",
) -> dict:
    """Every world of ``bundle_worlds`` at each batch size and dtype beside MuJoCo step+render
    (``dream_report``: one run, interleaved rounds), and its fidelity (``fidelity``) beside its
    speed. ``settings``: further ``DreamConfig`` fields, one speed row each (compile,
    observation)."""
    worlds = bundle_worlds(checkpoint)
    configs = [
        DreamConfig(**serving.record(), dtype=dtype, device=device, **extra)
        for serving in worlds
        for dtype in dtypes
        for extra in settings
    ]
    report = dream_report(configs, checkpoint, batches, seconds, scene_steps, rounds)
    report["fidelity"] = {
        serving.name: fidelity(checkpoint, serving, episodes, horizon, gain_starts, device) for serving in worlds
    }
    report["served"] = worlds[0].name
    return report


def worlds_table(report: dict) -> str:
    """``worlds_report`` as markdown: ``dream_table``'s speed columns, then fidelity."""
    fidelity_of, served = report["fidelity"], report["served"]
    lines = dream_table(report, settings=False).splitlines()
    header = 2  # the machine line and a blank line precede the table
    extra = ["compile", "observation", "PSNR h1 (dB)", "PSNR h10 (dB)", "action gain"]
    lines[header] += " " + " | ".join(extra) + " |"
    lines[header + 1] += " ---: |" * len(extra)
    lines[header + 2] += " - |" * len(extra)
    for index, row in enumerate(report["dreams"]):
        scores = fidelity_of[row["serving"]]
        cells = [
            "on" if row["compile"] else "off",
            row["observation"],
            *(f"{scores[key]:.2f}" if key in scores else "-" for key in ("psnr_h1", "psnr_h10", "action_gain")),
        ]
        name = f"{row['serving']} (served)" if row["serving"] == served else row["serving"]
        line = lines[header + 3 + index].replace(f"| {row['serving']} |", f"| {name} |", 1)
        lines[header + 3 + index] = line + " " + " | ".join(cells) + " |"
    gain = next(iter(fidelity_of.values()))["gain_of"]
    return "\n".join([*lines, "", f"Action gain: the dream's push response over MuJoCo's ({gain}; 1: as MuJoCo)."])


def plot_worlds(report: dict, path: Path) -> None:
    """Env-steps/s against batch size for each world and dtype, MuJoCo step+render as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from worldenv.io import atomic_write

    figure, axis = plt.subplots(figsize=(7, 4.5))
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in report["dreams"]:
        label = (
            f"{row['serving']} {row['dtype']}"
            + (" compiled" if row.get("compile") else "")
            + (f" {row['observation']}" if row.get("observation", "pixels") != "pixels" else "")
        )
        curves.setdefault(label, []).append((row["envs"], row["env_steps_per_s"]))
    for label, points in curves.items():
        scores = report["fidelity"].get(label.split()[0], {})
        psnr = f", h10 {scores['psnr_h10']:.1f} dB" if "psnr_h10" in scores else ""
        axis.plot(*zip(*points), marker="o", label=label + psnr)
    axis.axhline(report["mujoco_env_steps_per_s"], color="k", linestyle=":", label="MuJoCo step+render (1 process)")
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="envs in the batch",
        ylabel="env-steps/s",
        title=f"{report['scene']}: dreams beside MuJoCo ({report['threads']} threads, {report['device']})",
    )
    axis.legend(fontsize=7)
    figure.tight_layout()
    atomic_write(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    plt.close(figure)
