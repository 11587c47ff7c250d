"""Does the teacher use the action? One-step predictions on held-out windows.

For held-out windows of real frames, the backbone predicts the last frame's clean
latent in one evaluation from pure noise (t = 1) with its clean context, once
under the recorded actions and once under the last action replaced (negated,
zeroed, +1, -1). Printed: each prediction's latent MSE to the truth, the MSE
between the two predictions (how much the action moved the prediction), and the
copy-last-frame MSE; and, for scale, the same two numbers for MuJoCo itself: the
scene restored to the recorded state before the last frame, stepped under the
replaced action, rendered and encoded (a model that uses the action as MuJoCo
does moves its prediction about as much). Latent MSE understates a blurred
prediction's motion (a soft edge shifted changes fewer values than a sharp one), so
the same is read in task units too: the state probe on the decoded prediction and
on MuJoCo's frame, and per quantity the gain, the least-squares factor from MuJoCo's
displacement to the prediction's (1: the push moves the prediction as it moves the
arm; 0: the prediction ignores it).

    python benchmarks/action_sensitivity.py --bundle checkpoints/reacher --data data/reacher --held-out 50
"""

import argparse
import json

import mujoco
import numpy as np
import torch

import worldenv  # noqa: F401, I001  (sets MUJOCO_GL before mujoco is imported)
from worldenv.checkpoint import load_bundle
from worldenv.data.dataset import load_dataset
from worldenv.eval.action_response import response_gain
from worldenv.eval.probe import QUANTITIES, load_probe, probe_readings

# Decoded in one call, as the recorded results were; world_model.latents_to_frames decodes in fixed chunks (other bits).
from worldenv.nn.tokenizer import to_uint8
from worldenv.scenes import make_scene
from worldenv.world_model import load_backbone, load_tokenizer

REPLACEMENTS = {
    # Control: MuJoCo must move by ~0 here, else qpos/qvel are not the scene's whole state
    # (duo's targets are not) and the MuJoCo column means nothing.
    "recorded": lambda a: a,
    "negated": lambda a: -a,
    "zero": torch.zeros_like,
    "plus_one": torch.ones_like,
    "minus_one": lambda a: -torch.ones_like(a),
}


@torch.inference_mode()
def measure(bundle_path: str, data_path: str, held_out: int, windows: int, seed: int, model: str) -> dict:
    bundle = load_bundle(bundle_path)
    tokenizer, backbone = load_tokenizer(bundle), load_backbone(bundle, model).eval()
    data = load_dataset(data_path)
    if not 0 < held_out <= data.num_episodes:
        raise ValueError(f"--held-out: expected 1 to {data.num_episodes} (the dataset's episodes), got {held_out}")
    first = data.num_episodes - held_out
    rng = np.random.default_rng(seed)
    length = backbone.config.context_frames
    episodes = rng.integers(first, data.num_episodes, windows)
    starts = np.array([data.episode_starts[e] + rng.integers(0, data.episode_lengths[e] - length) for e in episodes])
    index = starts[:, None] + np.arange(length)  # (W, L)
    frames, actions = torch.from_numpy(data.frames[index]), torch.from_numpy(data.actions[index])
    W, L = index.shape
    latents = tokenizer.encode(frames.flatten(0, 1)).reshape(W, L, -1, backbone.config.latent_channels)
    noise = torch.randn(latents[:, -1].shape, generator=torch.Generator().manual_seed(seed))
    times = torch.cat([torch.zeros(W, L - 1), torch.ones(W, 1)], dim=1)

    def predict(acts: torch.Tensor) -> torch.Tensor:
        x = torch.cat([latents[:, :-1], noise[:, None]], dim=1)
        return noise - backbone(x, times, acts).velocity[:, -1]  # x0 = x_1 - 1 * v

    scene_name = bundle.metadata["scene"]
    probe = load_probe(bundle)
    kinds = {q.name: q.kind for q in QUANTITIES[scene_name]}

    def read(frames: torch.Tensor) -> dict[str, np.ndarray]:
        return probe_readings(scene_name, probe.predict(frames.numpy()))

    def decode_and_read(latent: torch.Tensor) -> dict[str, np.ndarray]:
        grid = backbone.config.grid
        return read(to_uint8(tokenizer.decode(latent.reshape(W, grid, grid, -1))))

    def displacement(name: str, after: np.ndarray, before: np.ndarray) -> np.ndarray:
        moved = after - before
        return ((moved + np.pi) % (2 * np.pi) - np.pi).ravel() if kinds[name] == "angle" else moved.ravel()

    truth = latents[:, -1]
    recorded = predict(actions)
    recorded_reading, truth_reading = decode_and_read(recorded), read(frames[:, -1])
    report = {
        "windows": W,
        "mse_recorded_action": float((recorded - truth).square().mean()),
        "mse_copy_last": float((latents[:, -2] - truth).square().mean()),
        "replacements": {},
    }
    scene = make_scene(scene_name).unwrapped
    scene.reset(seed=0)
    before = index[:, -2]
    for name, replace in REPLACEMENTS.items():
        changed = actions.clone()
        changed[:, -1] = replace(actions[:, -1])
        prediction = predict(changed)
        real = torch.from_numpy(
            np.stack(
                [
                    mujoco_step(scene, data.states["qpos"][f], data.states["qvel"][f], a)
                    for f, a in zip(before, changed[:, -1].numpy())
                ]
            )
        )
        real_latent = tokenizer.encode(real).reshape(truth.shape)
        prediction_reading, real_reading = decode_and_read(prediction), read(real)
        report["replacements"][name] = {
            "model_mse_to_truth": float((prediction - truth).square().mean()),
            "model_moved_by": float((prediction - recorded).square().mean()),
            "mujoco_moved_by": float((real_latent - truth).square().mean()),
            "probe_gain": {
                q: response_gain(
                    [
                        (
                            displacement(q, real_reading[q], truth_reading[q]),
                            displacement(q, prediction_reading[q], recorded_reading[q]),
                        )
                    ]
                )
                for q in kinds
            },
        }
    scene.close()
    return report


def mujoco_step(scene, qpos: np.ndarray, qvel: np.ndarray, action: np.ndarray) -> np.ndarray:
    scene.data.qpos[:], scene.data.qvel[:] = qpos, qvel
    mujoco.mj_forward(scene.model, scene.data)
    return scene.step(action)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--held-out", type=int, default=50, help="the dataset's last N episodes are held out")
    parser.add_argument("--windows", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="teacher")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(measure(args.bundle, args.data, args.held_out, args.windows, args.seed, args.model), indent=2))


if __name__ == "__main__":
    main()
