"""Speed measurements, printed as markdown tables. Every number comes from a
run of these functions; BENCHMARKS.md records which command, machine and date."""

import os
import platform
import time
from pathlib import Path

from worldenv.scenes import SCENES, make_scene


def machine() -> str:
    cpu = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def scene_speed(name: str, steps: int, antialiasing: bool = True) -> float:
    """Step+render frames per second of one scene in this process (random actions)."""
    env = make_scene(name, max_episode_steps=-1).unwrapped
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

    env = make_scene(name).unwrapped
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
