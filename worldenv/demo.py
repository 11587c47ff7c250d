"""``worldenv demo``: a small dataset of every scene, a contact sheet of all of
them and one video per scene, so a fresh install shows what the ground truth
looks like."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from worldenv.data.collect import CollectConfig, collect
from worldenv.data.dataset import load_dataset
from worldenv.scenes import SCENES, make_scene
from worldenv.video import contact_sheet, write_png, write_video

FRAMES_PER_ROW = 10


def run_demo(out: Path, episodes: int = 4, steps: int = 100, workers: int = 2) -> Iterator[str]:
    """Collect, verify and render every scene; yields one line of report per step."""
    out = Path(out)
    rows = []
    for name in SCENES:
        config = CollectConfig(scene=name, episodes=episodes, steps_per_episode=steps, shard_size=max(1, episodes // workers))
        collect(config, out / "data" / name, workers=workers, progress=False)
        data = load_dataset(out / "data" / name)
        episode = data.frames[data.episode_frames(int(np.argmax(data.episode_lengths)))]
        fps = make_scene(name).metadata["render_fps"]
        write_video(out / f"{name}.mp4", episode, fps=fps)
        rows.append(episode[np.linspace(0, len(episode) - 1, FRAMES_PER_ROW).astype(int)])
        yield f"{name:9s} {data.num_episodes} episodes, {data.num_frames} frames verified -> {out / (name + '.mp4')}"
    write_png(out / "scenes.png", contact_sheet(rows, scale=3))
    yield f"contact sheet -> {out / 'scenes.png'}"
