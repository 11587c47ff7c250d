"""``worldenv demo`` (``make demo``): what a fresh install can do, in a minute or two.

1. For each shipped checkpoint (reacher, cartpole, duo, panorama): one real MuJoCo start, the same
   goal-directed actions in the dream and in MuJoCo, a side-by-side video
   (dream | MuJoCo | difference), both worlds' frames per second measured in
   this run, and the dream's PSNR against MuJoCo per horizon.
2. The ground truth of every scene: a small verified dataset each, one video per
   scene and a contact sheet of all of them.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from worldenv.checkpoint import shipped_checkpoint
from worldenv.data.collect import CollectConfig, collect
from worldenv.data.dataset import load_dataset
from worldenv.eval.record import paired_rollout, report_lines, write_side_by_side
from worldenv.eval.video import contact_sheet, write_png, write_video
from worldenv.scenes import SCENES, make_scene

FRAMES_PER_ROW = 10
DREAM_SCENES = ("reacher", "cartpole", "duo", "panorama")


def run_demo(
    out: Path, steps: int = 200, policy: str = "goal", gallery_episodes: int = 4, gallery_steps: int = 100, workers: int = 2
) -> Iterator[str]:
    """Yields the report, a line at a time."""
    out = Path(out)
    for scene in DREAM_SCENES:
        rollout = paired_rollout(shipped_checkpoint(scene), policy, steps, scene=scene)
        video = write_side_by_side(rollout, out / f"dream_{scene}.mp4")
        yield f"{scene} dream: {policy} actions, {steps} frames -> {video} (dream | MuJoCo | difference x3)"
        yield from (f"  {line}" for line in report_lines(rollout))
    yield from _ground_truth_gallery(out, gallery_episodes, gallery_steps, workers)


def _ground_truth_gallery(out: Path, episodes: int, steps: int, workers: int) -> Iterator[str]:
    rows = []
    for name in SCENES:
        config = CollectConfig(scene=name, episodes=episodes, steps_per_episode=steps, shard_size=max(1, episodes // workers))
        collect(config, out / "data" / name, workers=workers, progress=False)
        data = load_dataset(out / "data" / name)
        episode = data.frames[data.episode_frames(int(np.argmax(data.episode_lengths)))]
        fps = make_scene(name).metadata["render_fps"]
        write_video(out / f"{name}.mp4", episode, fps=fps)
        rows.append(episode[np.linspace(0, len(episode) - 1, FRAMES_PER_ROW).astype(int)])
        video = out / (name + ".mp4")
        yield f"{name:9s} ground truth: {data.num_episodes} episodes, {data.num_frames} frames verified -> {video}"
    write_png(out / "scenes.png", contact_sheet(rows, scale=3))
    yield f"contact sheet -> {out / 'scenes.png'}"
