"""Input checks shared by the ground-truth scenes and the dream: bad input fails
loudly with what was expected, never as a silently wrong rollout."""

import sys

import numpy as np


def as_array(value, expected: str, where: str) -> np.ndarray:
    """``value`` as a numpy array. A torch tensor (a policy's output as it comes), alone or inside
    a list or tuple, is detached, made dense and moved to the CPU, and a bfloat16 one made
    float32, since numpy has no bfloat16. Whatever numpy cannot take (a ragged nested sequence,
    a tensor without data) raises naming ``expected``; numpy's and torch's own errors name nothing."""
    try:
        return np.asarray(_untorch(value))
    except (ValueError, TypeError, RuntimeError, NotImplementedError) as error:
        # numpy >= 1.24 refuses a ragged sequence with a ValueError; a meta tensor has no data.
        what = "a ragged sequence" if isinstance(error, ValueError) else f"what numpy cannot take ({error})"
        raise (ValueError if isinstance(error, ValueError) else TypeError)(
            f"{where}: expected {expected}, got {what} {_short(value)}"
        ) from None


def _untorch(value):
    """``value`` with every torch tensor in it (at any depth of lists and tuples) as numpy: numpy
    would otherwise call each tensor's ``numpy()``, which refuses requires_grad and bfloat16."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is loaded: the scenes never load it
    if torch is None:
        return value
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.layout != torch.strided:
            value = value.to_dense()
        # Only bfloat16, which numpy lacks, is widened: a float64 action beyond float32's range
        # is finite and clips to a bound, where a float32 cast would make it inf.
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy(force=True)
    if isinstance(value, (list, tuple)):
        return [_untorch(item) for item in value]
    return value


def _short(value) -> str:
    """``repr(value)``, cut short: a ragged context of frames would print thousands of numbers."""
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}..."


def check_action(action, low: np.ndarray, high: np.ndarray, where: str) -> np.ndarray:
    """Return ``action`` as float32 clipped to ``[low, high]``.

    Policy: out-of-range actions are clipped (as MuJoCo's ``ctrlrange`` would clip
    them, and as SB3 clips its Gaussian policies' samples); wrong shape, a
    non-numeric dtype, NaN or inf raise, since no clip makes those meaningful.
    Torch tensors are taken as ``as_array`` takes them.
    """
    array = as_array(action, f"an action of shape {low.shape} and a real dtype", where)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{where}: expected a real-valued action of shape {low.shape}, got dtype {array.dtype}")
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
