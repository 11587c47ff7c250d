"""Does the dream answer an action as MuJoCo does? The state probe's reading under constant pushes.

From the same real starts (reset seeds 0, 1, ...; ``--context`` frames under zero
actions prime the dream), both worlds get the same constant action, on every action
dimension, for ``--steps`` steps. The bundle's state probe reads every frame of both,
and the script prints each quantity's mean reading per step, MuJoCo above the dream,
for each value in ``--actions``, and each quantity's gain: the least-squares factor
from MuJoCo's displacement to the dream's at step ``--gain-step``, over all actions
(1 answers as MuJoCo does, 0 ignores the action). A dream that answers too weakly or too late lets a
policy learn a feedback gain that is stable in the dream and diverges in MuJoCo
(what PPO did on the cartpole, docs/experiments/2026-11-29-agents-cartpole.md). ``--strip PNG`` draws the first
start's frames per action, MuJoCo above the dream: a probe reading can take a fading arm
for a moving one, a picture cannot.

    python benchmarks/action_response.py --scene cartpole --actions 1 0.5 0 -1
    python benchmarks/action_response.py --scene reacher --actions 1 -1 --hold 3 --steps 12   # push, then coast
"""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import imageio.v3 as imageio  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from dream_arguments import add_dream_arguments  # noqa: E402

from worldenv.checkpoint import (
    load_bundle,  # noqa: E402
    shipped_checkpoint,  # noqa: E402
)
from worldenv.envs import DiffusionWorldEnv  # noqa: E402
from worldenv.eval.action_response import displacements, response_gain, responses  # noqa: E402
from worldenv.eval.probe import load_probe  # noqa: E402
from worldenv.scenes import make_scene  # noqa: E402


def strip_image(rows: list[np.ndarray], scale: int = 2) -> np.ndarray:
    """Rows of frames (steps + 1, H, W, 3), each laid out left to right, stacked top to
    bottom with a white gap, enlarged ``scale`` times."""
    gap = np.full((4, rows[0].shape[0] * rows[0].shape[2], 3), 255, np.uint8)
    lines = [part for row in rows for part in (np.concatenate(list(row), axis=1), gap)][:-1]
    return np.concatenate(lines, axis=0).repeat(scale, 0).repeat(scale, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dream_arguments(parser)
    parser.add_argument("--actions", type=float, nargs="+", default=[1.0, 0.5, 0.0, -1.0])
    parser.add_argument("--starts", type=int, default=4, help="real starts averaged over")
    parser.add_argument("--context", type=int, default=4, help="real frames that prime the dream")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--gain-step", type=int, default=3, help="step at which the gain is measured")
    parser.add_argument(
        "--hold",
        type=int,
        default=None,
        help="push for this many steps, then zero actions: does the dream keep the momentum? (default: all steps)",
    )
    parser.add_argument("--json", type=Path, help="write the mean readings and gains here")
    parser.add_argument("--strip", type=Path, help="write a PNG of the first start's frames: per action, MuJoCo above the dream")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or shipped_checkpoint(args.scene)
    report, pairs = {}, {}
    probe = load_probe(load_bundle(checkpoint))
    dream = DiffusionWorldEnv(
        scene=args.scene,
        checkpoint=checkpoint,
        model=args.model,
        sampling_steps=args.sampling_steps,
        action_guidance=args.action_guidance,
        commit=args.commit,
    )
    truth = make_scene(args.scene, max_episode_steps=-1)
    held = "" if args.hold is None else f" for {args.hold} steps, then none"
    print(
        f"{args.scene} ({checkpoint}): mean probe reading per step under a constant action{held}, "
        f"{args.starts} real starts; step 0 is the last context frame"
    )
    strip = []
    for action in args.actions:
        worlds, frames = responses(dream, truth, probe, args.scene, action, args.starts, args.context, args.steps, args.hold)
        strip += [frames["mujoco"][0], frames["dream"][0]]
        report[str(action)] = {
            world: {name: r.mean(0).tolist() for name, r in readings.items()} for world, readings in worlds.items()
        }
        for name in worlds["mujoco"]:
            # Angles unwrapped along the steps: a joint pushed for 10 steps turns past half a turn.
            moved = {world: displacements(args.scene, worlds[world], args.gain_step)[name] for world in worlds}
            pairs.setdefault(name, []).append((moved["mujoco"].ravel(), moved["dream"].ravel()))
            for world in ("mujoco", "dream"):
                mean = worlds[world][name].mean(0)  # (steps + 1, k)
                for k in range(mean.shape[1]):
                    values = " ".join(f"{v:+.3f}" for v in mean[:, k])
                    print(f"a={action:+.2f} {name}[{k}] {world:<6s} {values}")
    dream.close()
    truth.close()
    gains = {name: response_gain(by_name) for name, by_name in pairs.items()}
    print(
        f"gain at step {args.gain_step} (dream displacement / MuJoCo's): "
        + ", ".join(f"{name} {gain:.2f}" for name, gain in gains.items())
    )
    if args.strip:
        args.strip.parent.mkdir(parents=True, exist_ok=True)
        imageio.imwrite(args.strip, strip_image(strip))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "scene": args.scene,
                    "checkpoint": str(checkpoint),
                    "starts": args.starts,
                    "hold": args.hold,
                    "gain_step": args.gain_step,
                    "gains": gains,
                    "readings": report,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
