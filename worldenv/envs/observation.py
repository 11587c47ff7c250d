"""What an agent observes of a dream (``DreamConfig.observation``).

``pixels``: the frame the dream shows, the scene's own observation space (the default; a
policy moves between the dream and MuJoCo unchanged). ``latent``: the latent tokens
the dream carries in its KV cache for the frame (the context frame's encoding after a
reset, the committed latent after a step), flat, (N * C,) float32: ``reshape(N, C)``
gives the tokens (SB3's checker warns of any observation neither an image nor a vector).
No decode at all, unless the bundle commits the re-encoded frame (``commit="frame"``),
whose step decodes anyway.
``probe``: the bundle's state probe (``worldenv.eval.probe``) read off the frame, its
(outputs,) float32 regression targets (angles as cos and sin, points in metres): a
decode and a small CNN more per frame, for a policy that wants the task state and not
pixels. ``render()`` shows the frames in every mode, decoded when asked
(``WorldModel.shown_frames``).
"""

import numpy as np
import torch
from gymnasium import spaces

from worldenv.checkpoint import Bundle
from worldenv.nn.batch_invariant import in_fixed_chunks
from worldenv.world_model import WorldModel

# Latents and probe readings have no natural bound; Gymnasium's and SB3's checkers warn of
# infinite ones, and every finite float32 is a reading the dream may give.
FINITE = float(np.finfo(np.float32).max)


class Observer:
    """The observations of ``kind`` for the dreams of ``model``, in ``space``."""

    def __init__(self, kind: str, scene_space: spaces.Box, model: WorldModel, bundle: Bundle):
        self.kind, self.model = kind, model
        self.probe: torch.nn.Module | None = None
        if kind == "pixels":
            self.space = scene_space
        elif kind == "latent":
            self.space = spaces.Box(-FINITE, FINITE, (int(np.prod(model.latent_shape)),), np.float32)
        elif kind == "probe":
            if "probe" not in bundle.components:
                raise ValueError(
                    f"{bundle.path}: observation='probe' needs the bundle's state probe, and it has none; "
                    "expected observation 'pixels' or 'latent', or a bundle trained with "
                    "`worldenv train probe`"
                )
            from worldenv.eval.probe import load_probe  # the one env mode that reads the probe

            self.probe = load_probe(bundle).to(model.device).requires_grad_(False)
            self.space = spaces.Box(-FINITE, FINITE, (self.probe.outputs,), np.float32)
        else:
            raise ValueError(f"expected observation to be one of ['latent', 'pixels', 'probe'], got {kind!r}")

    @property
    def decodes(self) -> bool:
        """Whether a step must decode its frames for the observation."""
        return self.kind != "latent"

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray | torch.Tensor | None, rows: np.ndarray | slice) -> np.ndarray:
        """The observations of the dreams ``rows`` (the last ``model`` step's or prime's) whose
        shown frames are ``frames`` (len(rows), H, W, 3) uint8 (None for ``latent``)."""
        if self.kind == "latent":
            index = torch.as_tensor(rows, device=self.model.device) if isinstance(rows, np.ndarray) else rows
            return self.model.state.last_latent[index].flatten(1).float().cpu().numpy()
        if frames is None:
            raise RuntimeError(f"Observer: observation={self.kind!r} needs the decoded frames")
        if self.probe is None:
            return frames.cpu().numpy() if isinstance(frames, torch.Tensor) else frames
        pixels = torch.as_tensor(frames, device=self.model.device)
        # In fixed chunks on the CPU: a dream's reading does not depend on its batch (nn/batch_invariant.py).
        readings = in_fixed_chunks(self.probe, pixels) if pixels.device.type == "cpu" else self.probe(pixels)
        return readings.float().cpu().numpy()
