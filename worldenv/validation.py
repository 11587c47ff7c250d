"""Input checks shared by the ground-truth scenes and the dream: bad input fails
loudly with what was expected, never as a silently wrong rollout."""

import sys

import numpy as np


def as_array(value, expected: str, where: str) -> np.ndarray:
    """``value`` as a numpy array. A torch tensor (a policy's output as it comes) is detached and
    moved to the CPU, and a floating one made float32, since numpy has no bfloat16. A ragged
    nested sequence raises naming ``expected``; numpy's own error names nothing."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is loaded: the scenes never load it
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach()
        return (value.float() if value.is_floating_point() else value).numpy(force=True)
    try:
        return np.asarray(value)
    except ValueError:  # numpy >= 1.24 refuses to build an array from a ragged sequence
        raise ValueError(f"{where}: expected {expected}, got a ragged sequence {value!r}") from None


def check_action(action, low: np.ndarray, high: np.ndarray, where: str) -> np.ndarray:
    """Return ``action`` as float32 clipped to ``[low, high]``.

    Policy: out-of-range actions are clipped (as MuJoCo's ``ctrlrange`` would clip
    them, and as SB3 clips its Gaussian policies' samples); wrong shape, a
    non-numeric dtype, NaN or inf raise, since no clip makes those meaningful.
    Torch tensors are taken as ``as_array`` takes them.
    """
    array = as_array(action, f"an action of shape {low.shape} and a real dtype", where)
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
