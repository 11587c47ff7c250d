"""Which action pathway learns how a push moves the frame.

Small next-frame regressors (the backbone at t = 1 with a clean context, trained on
the latents of a dataset's episodes) are trained twice, alike but for how the action
reaches the tokens: in the adaLN condition only, and with ActionFlow beside it
(``worldenv/nn/action_flow.py``). Each is scored on held-out windows against
MuJoCo's counterfactual: the scene restored to the state before the window's last
frame and stepped under a random action instead of the recorded one. The gain is the
least-squares factor from MuJoCo's latent difference (recorded minus random action)
to the regressor's (1: the prediction moves as the frame does; 0: it ignores the
action); "explained" is the share of that difference the regressor predicts.

Each pathway is also trained with a twin loss: part of every batch is training
windows paired with their counterfactual twin (same context, same noise, the last
frame and action replaced by MuJoCo's counterfactual), and the difference of the two
predictions is regressed on the difference of the two frames (``--twin-weight``).
Only a simulator can supply such pairs; they isolate what the action changes.

    python benchmarks/action_pathways.py --bundle checkpoints/reacher --data data/reacher --held-out 50
"""

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from action_sensitivity import mujoco_step
from tqdm import tqdm

import worldenv  # noqa: F401, I001  (sets MUJOCO_GL before mujoco is imported)
from worldenv.checkpoint import load_bundle
from worldenv.data.dataset import FrameDataset, load_dataset

# The experiment trains bare backbones that differ in how the action enters: the network itself is its subject.
from worldenv.nn.backbone import Backbone, BackboneConfig
from worldenv.scenes import make_scene

# The float16 latents a teacher trains on, encoded as training encodes them (no public encoder rounds so).
from worldenv.training.latent_windows import encode_frames
from worldenv.world_model import load_tokenizer

# name -> (ActionFlow beside the condition, twin loss)
VARIANTS = {
    "condition": (False, False),
    "condition, twin loss": (False, True),
    "condition + action_flow": (True, False),
    "condition + action_flow, twin loss": (True, True),
}


@dataclass
class Twins:
    """Windows and, for each, its last frame under another action."""

    latents: torch.Tensor  # (W, L, N, C)
    actions: torch.Tensor  # (W, L, A)
    twin_latent: torch.Tensor  # (W, N, C): the last frame under ``twin_action``
    twin_action: torch.Tensor  # (W, A)

    def twin_actions(self) -> torch.Tensor:
        """``actions`` with the last one replaced by the twin's."""
        actions = self.actions.clone()
        actions[:, -1] = self.twin_action
        return actions


def window_ends(data: FrameDataset, episodes: range, length: int) -> np.ndarray:
    """Frames that end a window of ``length`` frames inside one of ``episodes``."""
    return np.concatenate([data.episode_starts[e] + np.arange(length - 1, data.episode_lengths[e]) for e in episodes])


def counterfactual_twins(
    data: FrameDataset,
    tokenizer,
    scene_name: str,
    ends: np.ndarray,
    length: int,
    rng: np.random.Generator,
    latents: torch.Tensor | None = None,
) -> Twins:
    """Twins of the windows ending at ``ends``: MuJoCo restored to the state before each
    last frame and stepped under a uniform random action. ``latents``: the dataset's
    frames already encoded (else the windows are encoded here)."""
    scene = make_scene(scene_name).unwrapped
    scene.reset(seed=0)
    low, high = scene.action_space.low, scene.action_space.high
    twin_action = rng.uniform(low, high, (len(ends), len(low))).astype(np.float32)
    twin_frames = np.stack(
        [mujoco_step(scene, data.states["qpos"][f - 1], data.states["qvel"][f - 1], a) for f, a in zip(ends, twin_action)]
    )
    scene.close()
    index = ends[:, None] - length + 1 + np.arange(length)
    if latents is None:
        window_latents = (
            encode_frames(tokenizer, data.frames[index.ravel()])
            .float()
            .reshape(*index.shape, -1, tokenizer.config.latent_channels)
        )
    else:
        window_latents = latents[torch.from_numpy(index)].float()
    return Twins(
        window_latents,
        torch.from_numpy(data.actions[index]),
        encode_frames(tokenizer, twin_frames).float(),
        torch.from_numpy(twin_action),
    )


def train_and_score(
    flow: bool,
    latents: torch.Tensor,
    actions: torch.Tensor,
    ends: np.ndarray,
    held_out: Twins,
    training_twins: Twins | None,
    args: argparse.Namespace,
) -> list[dict]:
    """Train one regressor (with the twin loss if ``training_twins``) and score it on
    ``held_out`` every ``--eval-every`` steps."""
    L = args.frames
    N, C = latents.shape[1:]
    torch.manual_seed(args.seed)
    model = Backbone(
        BackboneConfig(
            latent_channels=C,
            grid=int(N**0.5),
            action_dim=actions.shape[1],
            width=args.width,
            depth=args.depth,
            heads=2,
            sink_frames=0,
            window_frames=L - 1,
            action_flow=flow,
        )
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    clean_context = torch.cat([torch.zeros(L - 1), torch.ones(1)])

    def predict(x0: torch.Tensor, a: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The last frame's clean latent in one evaluation from ``noise`` (x0 = x_1 - v)."""
        x = torch.cat([x0[:, :-1], noise[:, None]], dim=1)
        return noise - model(x, clean_context.expand(len(x0), -1), a).velocity[:, -1]

    def score(step: int) -> dict:
        with torch.no_grad():
            noise = torch.randn(held_out.latents[:, -1].shape, generator=torch.Generator().manual_seed(args.seed))
            recorded = predict(held_out.latents, held_out.actions, noise)
            moved = recorded - predict(held_out.latents, held_out.twin_actions(), noise)
            truth = held_out.latents[:, -1] - held_out.twin_latent
        return {
            "step": step,
            "held_out_mse": float((recorded - held_out.latents[:, -1]).square().mean()),
            "gain": float((moved * truth).sum() / truth.square().sum()),
            "explained": float(1 - (moved - truth).square().sum() / truth.square().sum()),
        }

    rows = [score(0)]
    for step in tqdm(range(1, args.steps + 1), desc="action_flow" if flow else "condition", leave=False):
        index = torch.from_numpy(rng.choice(ends, args.batch))[:, None] - L + 1 + torch.arange(L)
        x0 = latents[index].float()
        loss = (predict(x0, actions[index], torch.randn_like(x0[:, -1])) - x0[:, -1]).square().mean()
        if training_twins is not None:
            pairs = torch.from_numpy(rng.choice(len(training_twins.actions), args.batch // 2))
            x0, last = training_twins.latents[pairs], training_twins.latents[pairs, -1]
            twin_x0 = x0.clone()
            twin_x0[:, -1] = training_twins.twin_latent[pairs]
            noise = torch.randn_like(last)
            recorded = predict(x0, training_twins.actions[pairs], noise)
            other = predict(twin_x0, training_twins.twin_actions()[pairs], noise)
            pair_loss = ((recorded - last).square().mean() + (other - twin_x0[:, -1]).square().mean()) / 2
            difference = (recorded - other) - (last - twin_x0[:, -1])
            loss = (loss + pair_loss) / 2 + args.twin_weight * difference.square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.eval_every == 0 or step == args.steps:
            rows.append(score(step))
    return rows


def plot(results: dict[str, list[dict]], path: Path) -> None:
    """Gain and held-out error against training steps, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, rows in results.items():
        steps = [row["step"] for row in rows[1:]]
        axes[0].plot(steps, [row["gain"] for row in rows[1:]], marker="o", markersize=3, label=name)
        axes[1].plot(steps, [row["held_out_mse"] for row in rows[1:]], marker="o", markersize=3, label=name)
    axes[0].set_title("gain: the prediction's answer to the action / MuJoCo's")
    axes[1].set_title("held-out next-frame latent MSE")
    for axis in axes:
        axis.set_xlabel("training steps")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="holds the tokenizer")
    parser.add_argument("--data", required=True, help="a dataset with MuJoCo states")
    parser.add_argument("--held-out", type=int, default=50, help="the dataset's last N episodes are held out")
    parser.add_argument("--train-episodes", type=int, default=200, help="training episodes encoded (the first ones)")
    parser.add_argument("--windows", type=int, default=512, help="held-out windows scored")
    parser.add_argument("--twins", type=int, default=20000, help="training windows given a counterfactual twin")
    parser.add_argument("--twin-weight", type=float, default=1.0, help="weight of the twin difference loss")
    parser.add_argument("--frames", type=int, default=3, help="frames per window: the context, then the predicted one")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path, help="write gain and held-out error against steps here (PNG)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle, data = load_bundle(args.bundle), load_dataset(args.data)
    if not 0 < args.held_out < data.num_episodes:
        raise SystemExit(f"--held-out: expected 1 to {data.num_episodes - 1} (the dataset has {data.num_episodes} episodes)")
    first_held_out = data.num_episodes - args.held_out
    training = range(min(args.train_episodes, first_held_out))
    tokenizer, rng = load_tokenizer(bundle), np.random.default_rng(args.seed)
    started = time.perf_counter()
    held_ends = window_ends(data, range(first_held_out, data.num_episodes), args.frames)
    held_ends = np.sort(rng.choice(held_ends, min(args.windows, len(held_ends)), replace=False))
    scene = bundle.metadata["scene"]
    held_out = counterfactual_twins(data, tokenizer, scene, held_ends, args.frames, rng)
    last_frame = data.episode_starts[training.stop - 1] + data.episode_lengths[training.stop - 1]
    latents = encode_frames(tokenizer, data.frames[:last_frame])
    actions = torch.from_numpy(data.actions[:last_frame])
    ends = window_ends(data, training, args.frames)
    twin_ends = np.sort(rng.choice(ends, min(args.twins, len(ends)), replace=False))
    training_twins = counterfactual_twins(data, tokenizer, scene, twin_ends, args.frames, rng, latents)
    print(
        f"{len(ends)} training windows from {len(training)} episodes ({len(twin_ends)} with a twin), "
        f"{len(held_ends)} held-out twins ({time.perf_counter() - started:.0f} s to render and encode)"
    )
    results = {
        name: train_and_score(flow, latents, actions, ends, held_out, training_twins if twin else None, args)
        for name, (flow, twin) in VARIANTS.items()
    }
    print("| pathway | step | held-out MSE | gain | explained |\n| --- | ---: | ---: | ---: | ---: |")
    for name, rows in results.items():
        for row in rows[1:]:
            print(f"| {name} | {row['step']} | {row['held_out_mse']:.4f} | {row['gain']:.3f} | {row['explained']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
