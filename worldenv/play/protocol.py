"""The messages between the page and the server.

Out, per dreamed step, one binary message: a fixed little-endian header (``FRAME``) and
the raw RGB bytes of the dream's frame, then MuJoCo's (when shown). At 64x64 that is
24.6 kB a step: no image codec to wait for on either side, and nothing to decode but a
copy into the canvas. A saved video goes out as binary too (``VIDEO``). Everything else
the server says (hello, status, errors) is a small JSON text message.

In, small JSON text messages, each checked here (``parse``): a bad one raises
``ProtocolError`` with what was expected, which the session shows on the page, and the
session goes on.
"""

import json
import math
import struct
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np

FRAME_KIND, VIDEO_KIND = 1, 2
# kind, flags, height, width, frame number, last action seq applied, dream reward, MuJoCo
# reward, PSNR (dB; NaN without MuJoCo), dream ms, MuJoCo ms
FRAME = struct.Struct("<BBHHIIfffff")
DREAM_TERMINATED, TRUTH_TERMINATED, HAS_TRUTH = 1, 2, 4
VIDEO = struct.Struct("<BB")  # kind, format (index in VIDEO_FORMATS)
VIDEO_FORMATS = ("mp4", "gif")
MESSAGE_BYTES = 1024  # an action of any scene fits in a tenth of it
SEQ_LIMIT = 2**32  # the header's field


class ProtocolError(ValueError):
    """A client message that cannot be applied; the text says what was expected."""


@dataclass(frozen=True)
class Action:
    seq: int
    values: np.ndarray  # (A,) float32 within [-1, 1]


@dataclass(frozen=True)
class Target:
    """Where the goal policy steers (u, v in [0, 1] of the frame, from its top left), or
    None: back to the keys."""

    seq: int
    point: tuple[float, float] | None


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class Model:
    model: str
    steps: int


@dataclass(frozen=True)
class Save:
    seconds: float
    format: str


Command = Action | Target | Reset | Model | Save


def encode_frame(
    frame: int,
    seq: int,
    dream: np.ndarray,
    truth: np.ndarray | None,
    dream_reward: float,
    truth_reward: float,
    psnr: float,
    dream_ms: float,
    truth_ms: float,
    dream_terminated: bool,
    truth_terminated: bool,
) -> bytes:
    flags = (DREAM_TERMINATED * dream_terminated) | (TRUTH_TERMINATED * truth_terminated) | (HAS_TRUTH * (truth is not None))
    header = FRAME.pack(
        FRAME_KIND,
        flags,
        dream.shape[0],
        dream.shape[1],
        frame % SEQ_LIMIT,
        seq % SEQ_LIMIT,
        dream_reward,
        truth_reward,
        psnr,
        dream_ms,
        truth_ms,
    )
    return b"".join(
        [header, np.ascontiguousarray(dream).tobytes(), b"" if truth is None else np.ascontiguousarray(truth).tobytes()]
    )


def decode_frame(data: bytes) -> dict:
    """The inverse of ``encode_frame`` (the tests' and the benchmark's client; the page has its own)."""
    kind, flags, height, width, frame, seq, dream_reward, truth_reward, psnr, dream_ms, truth_ms = FRAME.unpack_from(data)
    if kind != FRAME_KIND:
        raise ProtocolError(f"expected a frame message (kind {FRAME_KIND}), got kind {kind}")
    size = height * width * 3
    pixels = np.frombuffer(data, np.uint8, offset=FRAME.size)
    expected = size * (2 if flags & HAS_TRUTH else 1)
    if len(pixels) != expected:
        raise ProtocolError(f"expected {expected} pixel bytes after the header, got {len(pixels)}")
    return {
        "frame": frame,
        "seq": seq,
        "dream": pixels[:size].reshape(height, width, 3),
        "truth": pixels[size:].reshape(height, width, 3) if flags & HAS_TRUTH else None,
        "dream_reward": dream_reward,
        "truth_reward": truth_reward,
        "psnr": psnr,
        "dream_ms": dream_ms,
        "truth_ms": truth_ms,
        "dream_terminated": bool(flags & DREAM_TERMINATED),
        "truth_terminated": bool(flags & TRUTH_TERMINATED),
    }


def encode_video(data: bytes, format: str) -> bytes:
    return VIDEO.pack(VIDEO_KIND, VIDEO_FORMATS.index(format)) + data


def text(kind: str, **fields) -> str:
    """A server-to-page JSON message."""
    return json.dumps({"type": kind, **fields})


def parse(message: str | bytes, action_dim: int) -> Command:
    """One client message as a command; ``ProtocolError`` says what was expected."""
    if isinstance(message, bytes):
        raise ProtocolError("expected JSON text messages, got a binary one")
    if len(message) > MESSAGE_BYTES:
        raise ProtocolError(f"expected messages of at most {MESSAGE_BYTES} bytes, got {len(message)}")
    try:
        body = json.loads(message)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"expected a JSON object, got text that is not JSON ({error.msg})") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ProtocolError('expected a JSON object with a "type" field')
    kind = body["type"]
    if kind == "action":
        return Action(_seq(body), _action(body.get("action"), action_dim))
    if kind == "target":
        return Target(_seq(body), _point(body.get("target")))
    if kind == "reset":
        return Reset()
    if kind == "model":
        model, steps = body.get("model"), body.get("steps")
        if not isinstance(model, str) or not _is_int(steps) or not 1 <= steps <= 64:
            raise ProtocolError(f'model: expected {{"model": a component name, "steps": 1 to 64}}, got {model!r}, {steps!r}')
        return Model(model, steps)
    if kind == "save":
        seconds, format = body.get("seconds"), body.get("format", "mp4")
        if not _is_number(seconds) or seconds <= 0 or format not in VIDEO_FORMATS:
            raise ProtocolError(
                f"save: expected seconds > 0 and format one of {list(VIDEO_FORMATS)}, got {seconds!r}, {format!r}"
            )
        return Save(float(seconds), format)
    raise ProtocolError(f"expected type action, target, reset, model or save, got {kind!r}")


def _is_int(value) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> TypeGuard[int | float]:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _seq(body: dict) -> int:
    seq = body.get("seq")
    if not _is_int(seq) or not 0 <= seq < SEQ_LIMIT:
        raise ProtocolError(f"{body['type']}: expected seq, an integer in [0, 2^32), got {seq!r}")
    return seq


def _action(values, action_dim: int) -> np.ndarray:
    if not isinstance(values, list) or len(values) != action_dim or not all(_is_number(v) for v in values):
        raise ProtocolError(f"action: expected a list of {action_dim} finite numbers, got {json.dumps(values)[:80]}")
    if any(abs(v) > 1 for v in values):
        raise ProtocolError(f"action: expected every value within [-1, 1], got {values}")
    return np.asarray(values, np.float32)


def _point(point) -> tuple[float, float] | None:
    if point is None:
        return None
    if not isinstance(point, list) or len(point) != 2 or not all(_is_number(v) and 0 <= v <= 1 for v in point):
        raise ProtocolError(f"target: expected null or [u, v] within [0, 1] (a point of the frame), got {json.dumps(point)[:80]}")
    return float(point[0]), float(point[1])
