"""Input checks shared by the ground-truth scenes and the dream: bad input fails
loudly with what was expected, never as a silently wrong rollout."""

import numpy as np


def check_action(action, low: np.ndarray, high: np.ndarray, where: str) -> np.ndarray:
    """Return ``action`` as float32 clipped to ``[low, high]``.

    Policy: out-of-range actions are clipped (as MuJoCo's ``ctrlrange`` would clip
    them, and as SB3 clips its Gaussian policies' samples); wrong shape, a
    non-numeric dtype, NaN or inf raise, since no clip makes those meaningful.
    """
    array = np.asarray(action)
    if array.dtype.kind not in "fiu":
        raise TypeError(
            f"{where}: expected a real-valued action of shape {low.shape}, got dtype {array.dtype}"
        )
    if array.shape != low.shape:
        raise ValueError(f"{where}: expected an action of shape {low.shape}, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{where}: expected a finite action, got {array!r}")
    return np.clip(array, low, high).astype(np.float32)


def check_image_size(width: int, height: int, where: str) -> None:
    """Frames smaller than 16 px cannot show the task; odd sizes break video encoders."""
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{where}: expected an integer {name}, got {value!r}")
        if value < 16 or value % 2:
            raise ValueError(f"{where}: expected an even {name} >= 16 pixels, got {value}")
