"""Speed measurements, printed as markdown tables. Every number comes from a
run of these functions; BENCHMARKS.md records which command, machine and date."""

import os
import platform
import time
from pathlib import Path
from typing import Any

from worldenv.scenes import SCENES, make_scene, unwrapped_scene
from worldenv.dream_config import DreamConfig


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
        return {"envs": self.envs.num_envs, "env_steps_per_s": env_steps_per_s,
                "ms_per_step": 1000 * self.envs.num_envs / env_steps_per_s, "evaluations": self.serving.evaluations,
                "gflop_per_env_step": _step_flops(self.envs) / self.envs.num_envs / 1e9}


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


def dream_report(configs: list[DreamConfig], checkpoint: Path | None = None, batches=(1, 16, 64, 256),
                 seconds: float = 6.0, scene_steps: int = 1000, rounds: int = 1) -> dict:
    """The dream served as each of ``configs`` (on one device) at several batch sizes beside
    MuJoCo step+render of the same scene, in one run. With ``rounds`` > 1 MuJoCo and every
    dream are measured in turn that many times: the speeds are medians, and each dream's
    ratio to MuJoCo is the median of the rounds' ratios, with their range (a shared
    machine's speed drifts by several percent over a minute, more than a ratio measured
    once can tell apart)."""
    import statistics

    import torch

    from worldenv.checkpoint import load_bundle
    from worldenv.checkpoint import shipped_checkpoint
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
        "machine": machine(), "torch": torch.__version__, "threads": torch.get_num_threads(), "scene": scene,
        "device": device + (f" ({torch.cuda.get_device_name(0)})" if device != "cpu" else ""),
        "mujoco_env_steps_per_s": statistics.median(mujoco), "rounds": rounds, "mujoco_rounds": mujoco, "dreams": []}
    for measured, (name, timer) in zip(speeds, timers):
        ratios = [dream / real for dream, real in zip(measured, mujoco)]
        report["dreams"].append({"serving": timer.serving.name, "dtype": name, **timer.record(statistics.median(measured)),
                                 "rounds": measured, "vs_mujoco": statistics.median(ratios),
                                 "vs_mujoco_range": [min(ratios), max(ratios)]})
    return report


def dream_table(report: dict) -> str:
    """``dream_report`` as a markdown table, MuJoCo first."""
    mujoco_fps = report["mujoco_env_steps_per_s"]
    rounds = report.get("rounds", 1)
    rows = [
        f"machine: {report['machine']}; torch {report['torch']}, {report['threads']} threads; scene {report['scene']}; "
        f"device {report['device']}" + (f"; medians of {rounds} interleaved rounds (the ratio's range in brackets)"
                                        if rounds > 1 else ""),
        "",
        "| world | dtype | envs | network evaluations per frame | env-steps/s | ms per step | vs MuJoCo | GFLOP per env-step | GFLOP/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| MuJoCo step+render (1 process) | - | 1 | - | {mujoco_fps:.0f} | {1000 / mujoco_fps:.2f} | 1.00 | - | - |",
    ]
    for r in report["dreams"]:
        ratio = f"{r.get('vs_mujoco', r['env_steps_per_s'] / mujoco_fps):.2f}"
        if rounds > 1:
            ratio += " ({:.2f}-{:.2f})".format(*r["vs_mujoco_range"])
        rows.append(f"| {r['serving']} | {r['dtype']} | {r['envs']} | {r['evaluations']} | {r['env_steps_per_s']:.0f} | "
                    f"{r['ms_per_step']:.1f} | {ratio} | "
                    f"{r['gflop_per_env_step']:.2f} | {r['gflop_per_env_step'] * r['env_steps_per_s']:.0f} |")
    return "\n".join(rows)
