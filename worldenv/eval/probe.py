"""The state probe: a small CNN trained on real frames to read the task state
(joint angles, object positions) off a frame. Applied to dream frames it turns
image error into task units (radians, metres), which is what a policy cares
about: past ten frames, PSNR rewards blur, the probe does not.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from worldenv.data.dataset import FrameDataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quantity:
    name: str
    kind: str  # "angle" (radians, read as cos/sin), "point" (x, y metres) or "scalar"
    source: str  # "qpos", "task", or "view" (derived from the task state: what the camera sees, see ``VIEWS``)
    index: tuple[int, ...]  # angle/scalar: one index per quantity; point: (x, y) pairs flattened

    @property
    def width(self) -> int:
        return 2 * len(self.index) if self.kind == "angle" else len(self.index)


class SceneQuantities(dict[str, tuple[Quantity, ...]]):
    """The built-in scenes' quantities, and a ``gym:`` scene's derived from its model's
    joints on first use (``gym_scene.probe_quantities``), so that every reader of
    ``QUANTITIES[scene]`` knows both."""

    def __missing__(self, scene: str) -> tuple[Quantity, ...]:
        from worldenv.scenes import GYM_PREFIX

        if not (isinstance(scene, str) and scene.startswith(GYM_PREFIX)):
            raise KeyError(scene)
        from worldenv.scenes.gym_scene import probe_quantities

        self[scene] = tuple(Quantity(name, kind, "qpos", index) for name, kind, index in probe_quantities(scene))
        return self[scene]


# What each scene's probe reads, in task units.
QUANTITIES = SceneQuantities(
    {
        "reacher": (
            Quantity("joint_angles", "angle", "qpos", (0, 1)),
            Quantity("fingertip", "point", "task", (0, 1)),
            Quantity("target", "point", "task", (2, 3)),
        ),
        "cartpole": (Quantity("pole_angle", "angle", "qpos", (1,)), Quantity("cart_x", "scalar", "qpos", (0,))),
        # The arena looks the same in every direction but for its objects, which move every
        # episode: a frame shows where the objects in view stand relative to the camera, not
        # the camera's pose. So the probe reads each object's place in the camera's frame
        # (forward, left; metres), and (0, 0) for an object outside the field of view.
        "panorama": (Quantity("objects_in_view", "point", "view", tuple(range(16))),),
        "duo": (Quantity("agents", "point", "task", (0, 1, 2, 3)), Quantity("targets", "point", "task", (4, 5, 6, 7))),
    }
)


def objects_in_view(task: np.ndarray) -> np.ndarray:
    """Panorama task states (..., 22) -> (..., 16): each object's (forward, left) offset from
    the camera in metres if within the horizontal field of view, else (0, 0)."""
    from worldenv.scenes.panorama import FIELD_OF_VIEW

    x, y, cos_yaw, sin_yaw = (task[..., i : i + 1] for i in range(4))
    dx, dy = task[..., 4:20:2] - x, task[..., 5:20:2] - y  # (..., 8)
    forward, left = cos_yaw * dx + sin_yaw * dy, -sin_yaw * dx + cos_yaw * dy
    visible = (forward > 0) & (np.abs(np.arctan2(left, forward)) < np.deg2rad(FIELD_OF_VIEW) / 2)
    offsets = np.stack([np.where(visible, forward, 0.0), np.where(visible, left, 0.0)], axis=-1)
    return offsets.reshape(*task.shape[:-1], 16)


VIEWS = {"objects_in_view": objects_in_view}


def probe_targets(scene: str, states: dict[str, np.ndarray]) -> np.ndarray:
    """(..., d) regression targets: angles as (cos, sin), points and scalars as they are."""
    parts = []
    for q in QUANTITIES[scene]:
        values = VIEWS[q.name](states["task"]) if q.source == "view" else states[q.source][..., list(q.index)]
        parts += [np.cos(values), np.sin(values)] if q.kind == "angle" else [values]
    return np.concatenate(parts, axis=-1).astype(np.float32)


def probe_readings(scene: str, outputs: np.ndarray) -> dict[str, np.ndarray]:
    """The probe's outputs (..., d) (or its targets) in task units, per quantity: angles
    in radians from their (cos, sin), points and scalars as they are."""
    readings, at = {}, 0
    for q in QUANTITIES[scene]:
        part = outputs[..., at : at + q.width]
        at += q.width
        if q.kind == "angle":
            n = len(q.index)
            part = np.arctan2(part[..., n:], part[..., :n])
        readings[q.name] = part
    return readings


def probe_errors(scene: str, predicted: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample error of each quantity in its own units: mean absolute wrapped
    angle (rad), mean Euclidean point distance (m), mean absolute scalar."""
    errors, kinds = {}, {q.name: q.kind for q in QUANTITIES[scene]}
    truth = probe_readings(scene, target)
    for name, p in probe_readings(scene, predicted).items():
        t = truth[name]
        if kinds[name] == "angle":
            errors[name] = np.abs((p - t + np.pi) % (2 * np.pi) - np.pi).mean(-1)
        elif kinds[name] == "point":
            errors[name] = np.linalg.norm((p - t).reshape(*p.shape[:-1], -1, 2), axis=-1).mean(-1)
        else:
            errors[name] = np.abs(p - t).mean(-1)
    return errors


class StateProbe(nn.Module):
    # Buffers (register_buffer below), declared so that the checker knows them as tensors.
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, outputs: int, width: int = 32):
        super().__init__()
        self.outputs = outputs  # readings per frame
        layers: list[nn.Module] = []
        channels = 3
        for out in (width, 2 * width, 4 * width, 4 * width):  # 64 -> 4 pixels
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.GroupNorm(8, out), nn.SiLU()]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(16 * channels, 256), nn.SiLU(), nn.Linear(256, outputs))
        self.register_buffer("mean", torch.zeros(outputs))
        self.register_buffer("std", torch.ones(outputs))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, outputs) in task units."""
        x = frames.float().div(127.5).sub(1.0).permute(0, 3, 1, 2)
        return self.head(self.features(x)) * self.std + self.mean

    @torch.inference_mode()
    def predict(self, frames: np.ndarray, batch: int = 512) -> np.ndarray:
        self.eval()
        flat = frames.reshape(-1, *frames.shape[-3:])
        out = [self(torch.from_numpy(flat[i : i + batch])).numpy() for i in range(0, len(flat), batch)]
        return np.concatenate(out).reshape(*frames.shape[:-3], -1)


def load_probe(bundle) -> StateProbe:
    """The bundle's state probe, built from its recorded config."""
    if "probe" not in bundle.components:
        raise ValueError(f"{bundle.path} has no state probe; train it with `worldenv train probe --config ...`")
    record = bundle.config("probe", "outputs")
    probe = StateProbe(record["outputs"], width=record.get("width", 32))
    bundle.load_into("probe", probe)
    return probe.eval()


def train_probe(
    dataset: FrameDataset, steps: int = 3000, batch: int = 64, seed: int = 0, progress: bool = True, width: int = 32
) -> StateProbe:
    """Fit a probe on (a dataset's) real frames and their true states."""
    scene = dataset.manifest.scene
    targets = probe_targets(scene, dataset.states)
    torch.manual_seed(seed)
    probe = StateProbe(targets.shape[1], width=width)
    probe.mean.copy_(torch.from_numpy(targets.mean(0)))
    probe.std.copy_(torch.from_numpy(targets.std(0) + 1e-3))
    optimizer = torch.optim.AdamW(probe.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    rng = np.random.default_rng(seed)
    for _ in tqdm(range(steps), desc="state probe", disable=not progress):
        index = rng.integers(dataset.num_frames, size=batch)
        predicted = probe(torch.from_numpy(dataset.frames[index]))
        loss = ((predicted - torch.from_numpy(targets[index])) / probe.std).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    logger.info("state probe trained: final loss %.4f", float(loss.detach()))
    return probe.eval()
