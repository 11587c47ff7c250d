"""Minari (the Farama offline-RL format) against worldenv's shards, side by side.

Both store the same reacher episodes (same seeds, same exploration policy) and
are then read the way training reads: random fixed-length windows. Minari
stores no per-step states here (its DataCollector needs the same info keys at
reset and step), which only flatters it.

    .venv/bin/pip install "minari[create,hdf5]"   # not dependencies of worldenv (DataCollector needs jax)
    .venv/bin/python benchmarks/storage_formats.py --episodes 100 --steps 200
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import worldenv  # noqa: F401  (sets MUJOCO_GL before MuJoCo loads)
from worldenv.data.collect import CollectConfig, collect, episode_seeds
from worldenv.data.dataset import load_dataset
from worldenv.data.policies import make_policy
from worldenv.data.sampler import WindowSampler
from worldenv.eval.bench import machine
from worldenv.scenes import make_scene


def time_minari_write(config: CollectConfig, root: Path) -> float:
    import minari

    os.environ["MINARI_DATASETS_PATH"] = str(root)
    env = minari.DataCollector(make_scene(config.scene, max_episode_steps=config.steps_per_episode))
    start = time.perf_counter()
    for episode in range(config.episodes):
        env_seed, rng = episode_seeds(config.seed, episode)
        env.reset(seed=env_seed)
        policy = make_policy(config.policy)
        policy.reset(env.unwrapped, rng)
        for _ in range(config.steps_per_episode):
            *_, terminated, truncated, _ = env.step(policy(env.unwrapped))
            if terminated or truncated:
                break
    env.create_dataset(dataset_id="worldenv/reacher-bench-v0", algorithm_name="mix")
    return time.perf_counter() - start


def minari_windows_per_second(length: int, batch: int, seconds: float) -> float:
    import minari

    dataset = minari.load_dataset("worldenv/reacher-bench-v0")
    rng = np.random.default_rng(0)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        # The API's unit is the episode: draw episodes, cut one window from each.
        for episode in dataset.sample_episodes(batch):
            first = rng.integers(len(episode.observations) - length + 1)
            np.asarray(episode.observations[first : first + length])
        count += batch
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    config = CollectConfig(scene="reacher", episodes=args.episodes, steps_per_episode=args.steps, shard_size=20)
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        start = time.perf_counter()
        collect(config, root / "shards", workers=1, progress=False)
        shards_write = time.perf_counter() - start
        minari_write = time_minari_write(config, root / "minari")
        start = time.perf_counter()
        sampler = WindowSampler(load_dataset(root / "shards"), args.length)
        shards_load = time.perf_counter() - start
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < 3.0:
            sampler.sample(args.batch)
            count += args.batch
        shards_rate = count / (time.perf_counter() - start)
        minari_rate = minari_windows_per_second(args.length, args.batch, 3.0)
        sizes = {
            name: sum(f.stat().st_size for f in (root / name).rglob("*") if f.is_file()) / 2**20 for name in ("shards", "minari")
        }
    frames = args.episodes * (args.steps + 1)
    print(f"machine: {machine()}; {args.episodes} reacher episodes x {args.steps} steps, 1 process")
    print()
    print(f"| format | collect+write s | disk MiB | load s | windows/s (L={args.length}, batch {args.batch}) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| worldenv shards | {shards_write:.1f} | {sizes['shards']:.1f} | {shards_load:.1f} | {shards_rate:.0f} |")
    print(f"| Minari (DataCollector, HDF5) | {minari_write:.1f} | {sizes['minari']:.1f} | - | {minari_rate:.0f} |")
    print(f"\n{frames} frames each")


if __name__ == "__main__":
    main()
