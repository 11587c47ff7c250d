"""Image metrics against analytic values and a direct numpy-loop reference."""

import math

import numpy as np
import pytest
import torch

from worldenv.eval.metrics import foreground_iou, psnr, ssim

torch.set_num_threads(1)


def _frames(seed: int, shape=(2, 32, 32, 3), low: int = 0, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, size=shape, dtype=np.uint8)


def _smooth(seed: int) -> np.ndarray:
    """A frame with structure at several scales, so SSIM has something to lose."""
    frames = _frames(seed, (1, 8, 8, 3), 20, 236).astype(np.float64)
    return np.kron(frames, np.ones((1, 8, 8, 1))).round().astype(np.uint8)  # (1, 64, 64, 3)


def _ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Wang et al. 2004 written out: every 11x11 window inside the image, gaussian weights,
    centred population (co)variances, per channel, then the mean."""
    offsets = np.arange(-5, 6)
    g = np.exp(-(offsets**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)
    height, width, channels = a.shape
    values = []
    for c in range(channels):
        for i in range(height - 10):
            for j in range(width - 10):
                pa, pb = a[i : i + 11, j : j + 11, c], b[i : i + 11, j : j + 11, c]
                mu_a, mu_b = (w * pa).sum(), (w * pb).sum()
                var_a, var_b = (w * (pa - mu_a) ** 2).sum(), (w * (pb - mu_b) ** 2).sum()
                cov = (w * (pa - mu_a) * (pb - mu_b)).sum()
                values.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_identical_frames_give_infinite_psnr_and_unit_ssim():
    frames = _frames(0)
    assert torch.isinf(psnr(frames, frames)).all()
    assert torch.allclose(ssim(frames, frames), torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_psnr_of_a_constant_offset():
    a = _frames(1, low=0, high=200)
    values = psnr(a, a + 10)  # MSE = 100
    expected = 10 * math.log10(255**2 / 100)
    assert values.shape == (2,) and torch.allclose(values, torch.full((2,), expected, dtype=torch.float64))


def test_psnr_is_per_image():
    a = _frames(2, low=0, high=200)
    b = a.copy()
    b[1] += 20  # only the second image differs
    values = psnr(torch.from_numpy(a), torch.from_numpy(b))
    assert math.isinf(values[0]) and values[1] == pytest.approx(20 * math.log10(255 / 20))


def test_ssim_matches_the_loop_reference():
    a = _frames(3, (2, 16, 14, 3))
    noise = np.random.default_rng(4).normal(0, 30, a.shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    values = ssim(a, b)
    for k in range(2):
        assert values[k].item() == pytest.approx(_ssim_reference(a[k], b[k]), abs=1e-10)
    smooth = _smooth(5)[0, :23, :19]
    shifted = np.roll(smooth, 3, axis=1)
    assert ssim(smooth[None], shifted[None]).item() == pytest.approx(_ssim_reference(smooth, shifted), abs=1e-10)


def test_ssim_decreases_with_noise():
    clean = _smooth(6)
    rng = np.random.default_rng(7)
    scores = []
    for sigma in (2, 10, 30, 80):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)
        scores.append(ssim(clean, noisy).item())
    assert all(s > t for s, t in zip(scores, scores[1:])), scores
    assert scores[0] < 1.0 and scores[-1] < 0.5


def test_float_frames_with_their_data_range_agree_with_uint8():
    a, b = _frames(8), _frames(9)
    fa, fb = torch.from_numpy(a).float() / 255, torch.from_numpy(b).float() / 255
    assert torch.allclose(psnr(fa, fb, data_range=1.0), psnr(a, b), atol=1e-4)
    assert torch.allclose(ssim(fa, fb, data_range=1.0), ssim(a, b), atol=1e-5)


@pytest.mark.parametrize("shift", [(0, 4), (3, 5), (0, 12)])
def test_iou_of_shifted_squares(shift):
    side, (dy, dx) = 10, shift
    background = np.array([30, 40, 50], np.uint8)
    a = np.broadcast_to(background, (1, 64, 64, 3)).copy()
    b = a.copy()
    a[0, 20 : 20 + side, 20 : 20 + side] = (200, 40, 50)  # differs in one channel only
    b[0, 20 + dy : 20 + dy + side, 20 + dx : 20 + dx + side] = (200, 40, 50)
    overlap = max(side - dy, 0) * max(side - dx, 0)
    expected = overlap / (2 * side * side - overlap)
    assert foreground_iou(a, b, background, threshold=20).item() == pytest.approx(expected)
    # The same with the background given as an image, and a threshold above the difference.
    image = np.broadcast_to(background, (64, 64, 3))
    assert foreground_iou(a, b, image, threshold=20).item() == pytest.approx(expected)
    assert foreground_iou(a, b, background, threshold=200).item() == 1.0  # both empty: agree


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        psnr(_frames(0), _frames(0)[:, :16])
    with pytest.raises(ValueError, match="same shape"):
        ssim(_frames(0)[0], _frames(0)[0])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(_frames(0, (1, 8, 8, 3)), _frames(0, (1, 8, 8, 3)))
    with pytest.raises(ValueError, match="uint8 or floating"):
        psnr(np.zeros((1, 4, 4, 3), np.int32), np.zeros((1, 4, 4, 3), np.int32))
    with pytest.raises(ValueError, match="background"):
        foreground_iou(_frames(0), _frames(0), np.zeros(4), threshold=1)
