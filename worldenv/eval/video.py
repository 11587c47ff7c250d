"""Frames to files with imageio: videos (mp4 through imageio-ffmpeg's bundled
ffmpeg, or gif) and PNG contact sheets. No moviepy needed."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from worldenv.io import atomic_write


def write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """Write ``(T, H, W, 3)`` uint8 frames as ``.mp4`` or ``.gif``, chosen by suffix."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"expected uint8 frames of shape (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        if frames.shape[1] % 2 or frames.shape[2] % 2:
            # libx264 fails on odd sizes by writing an empty file, without an error.
            raise ValueError(f"mp4 needs even frame sizes, got {frames.shape[1]}x{frames.shape[2]}")
    elif suffix != ".gif":
        raise ValueError(f"{path}: expected a .mp4 or .gif file name")

    def write(tmp: Path) -> None:
        if suffix == ".mp4":
            # macro_block_size=1 keeps 64x64 frames as they are (no resize to multiples of 16).
            iio.imwrite(tmp, frames, fps=fps, macro_block_size=1)
        else:
            iio.imwrite(tmp, frames, duration=1000.0 / fps, loop=0)
        if tmp.stat().st_size == 0:  # ffmpeg reports some failures only on stderr
            raise OSError(f"{path}: the video encoder wrote nothing")

    atomic_write(path, write)


def contact_sheet(rows: list[np.ndarray], gap: int = 2, scale: int = 1) -> np.ndarray:
    """Tile rows of frames (each ``(N, H, W, 3)``, same H and W) into one image with white gaps."""
    height, width = rows[0].shape[1:3]
    columns = max(len(row) for row in rows)
    sheet = np.full((len(rows) * (height + gap) + gap, columns * (width + gap) + gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            top, left = gap + r * (height + gap), gap + c * (width + gap)
            sheet[top : top + height, left : left + width] = frame
    return np.kron(sheet, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else sheet


def write_png(path: Path, image: np.ndarray) -> None:
    atomic_write(Path(path), lambda tmp: iio.imwrite(tmp, image, extension=".png"))
