"""Rectified-flow process and samplers: exact inverses, analytic fields, convergence orders, golden values."""

import math

import pytest
import torch

from worldenv.diffusion import (
    SAMPLERS,
    add_noise,
    flow_matching_loss,
    noise_from_velocity,
    sample,
    sample_training_times,
    timesteps,
    velocity_target,
    x0_from_velocity,
)

torch.set_num_threads(1)

# Gaussian data N(mu, s^2) per coordinate: x_t ~ N((1 - t) mu, (1 - t)^2 s^2 + t^2), and the
# probability-flow ODE moves every quantile z along x(t) = (1 - t) mu + sd_t z, so
# v(x, t) = -mu + (d sd_t / dt) / sd_t * (x - (1 - t) mu), with (d sd_t / dt) / sd_t = (t - (1 - t) s^2) / sd_t^2.
MU, S = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.5


def gaussian_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t[:, None]  # (B,) -> (B, 1) over the 2 coordinates
    return -MU + (t - (1 - t) * S**2) / ((1 - t) ** 2 * S**2 + t**2) * (x - (1 - t) * MU)


def gaussian_quantile(z: torch.Tensor, t: float) -> torch.Tensor:
    return (1 - t) * MU + math.sqrt((1 - t) ** 2 * S**2 + t**2) * z


def gaussian_error(name: str, num_steps: int, t0: float = 1.0, t1: float = 0.0) -> float:
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ts = timesteps(num_steps).double() if (t0, t1) == (1.0, 0.0) else torch.linspace(t0, t1, num_steps + 1)
    out = sample(name, gaussian_velocity, gaussian_quantile(z, t0), ts.double())
    return (out - gaussian_quantile(z, t1)).abs().max().item()


def test_round_trips_with_per_frame_levels():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 2, 3, 5, 4, generator=g)  # each (B, T, N, C) = (2, 3, 5, 4)
    for t in (torch.rand(2, 3, generator=g), torch.rand(2, generator=g)):
        x_t, v = add_noise(x0, noise, t), velocity_target(x0, noise)
        torch.testing.assert_close(x0_from_velocity(x_t, v, t), x0)
        torch.testing.assert_close(noise_from_velocity(x_t, v, t), noise)
    t = torch.rand(2, 3, generator=g)
    for b in range(2):
        for f in range(3):  # frame f of sample b carries its own level t[b, f]
            expected = (1 - t[b, f]) * x0[b, f] + t[b, f] * noise[b, f]
            torch.testing.assert_close(add_noise(x0, noise, t)[b, f], expected)
    with pytest.raises(ValueError, match="leading dims"):
        add_noise(x0, noise, torch.rand(3, 2))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("num_steps", [1, 2, 3, 8])
@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_delta_data_is_reached_exactly(name, num_steps, shift):
    # For data at one point x0*, v(x, t) = (x - x0*) / t: straight paths, so every sampler is exact.
    target = torch.tensor([0.5, -1.0, 2.0])
    x = 3 * torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    out = sample(name, lambda x, t: (x - target) / t[:, None], x, timesteps(num_steps, shift=shift))
    torch.testing.assert_close(out, target.expand(5, 3), rtol=0, atol=1e-5)


@pytest.mark.parametrize("span", [(1.0, 0.0), (0.8, 0.2)])
def test_gaussian_data_converges_to_the_quantile_map(span):
    for name, tol in [("euler", 3e-3), ("heun", 1e-5), ("dpm", 1e-4)]:
        assert gaussian_error(name, 1024, *span) < tol, name


def test_convergence_orders():
    errors = {name: [gaussian_error(name, n) for n in (16, 32, 64, 128, 256)] for name in SAMPLERS}
    for name, errs in errors.items():
        assert all(a > b for a, b in zip(errs, errs[1:])), (name, errs)
    order = {name: math.log2(errs[0] / errs[-1]) / 4 for name, errs in errors.items()}
    assert 0.9 < order["euler"] < 1.1, order
    assert 1.9 < order["heun"] < 2.1, order
    # DPM-Solver++(2M) at uniform t: log-SNR steps near t = 0 and 1 stay O(1), which costs a log factor.
    assert 1.6 < math.log2(errors["dpm"][2] / errors["dpm"][4]) / 2 < 2.1, errors["dpm"]


@pytest.mark.parametrize("num_steps", [4, 8, 16, 32])
def test_second_order_samplers_beat_euler_at_equal_calls(num_steps):
    assert gaussian_error("dpm", num_steps) < gaussian_error("euler", num_steps)  # N calls each
    assert gaussian_error("heun", num_steps) < gaussian_error("euler", 2 * num_steps - 1)  # 2N - 1 calls each


# Computed once with the samplers above (verified against an independent float64 reference in
# k-diffusion's sigma-space form); any change to a sampler's arithmetic must fail here.
GOLDEN = {
    "euler": [[0.245525, -0.036060, -0.395130], [0.072818, -0.155475, -0.215761]],
    "heun": [[0.365346, -0.062770, -0.551050], [0.123318, -0.245517, -0.326731]],
    "dpm": [[0.303174, -0.047561, -0.467830], [0.095354, -0.198257, -0.269183]],
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_golden_values(name):
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    out = sample(name, lambda x, t: torch.tanh(x) * t[:, None] + x, x, timesteps(4))
    torch.testing.assert_close(out, torch.tensor(GOLDEN[name]), rtol=0, atol=2e-6)


@pytest.mark.parametrize("num_steps", [1, 2, 5])
def test_velocity_calls_and_time_shapes(num_steps):
    expected = {"euler": num_steps, "heun": 2 * num_steps - 1, "dpm": num_steps}
    for name, calls in expected.items():
        seen: list[torch.Tensor] = []

        def velocity_fn(x, t, seen=seen):
            assert t.shape == (x.shape[0],)
            seen.append(t)
            return -x

        sample(name, velocity_fn, torch.ones(3, 2), timesteps(num_steps))
        assert len(seen) == calls, name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_samplers_keep_the_dtype(dtype):
    target = torch.tensor([0.5, -1.0], dtype=dtype)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(2)).to(dtype)
    for name in SAMPLERS:
        out = sample(name, lambda x, t: (x - target) / t[:, None].to(x.dtype), x, timesteps(4))
        assert out.dtype == dtype
        torch.testing.assert_close(out, target.expand(4, 2), rtol=0, atol=0.05)


@pytest.mark.gpu
def test_no_host_sync_on_cuda():
    x = torch.randn(8, 4, 16, device="cuda", dtype=torch.bfloat16)
    ts = timesteps(6, shift=3.0, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for name in SAMPLERS:
            sample(name, lambda x, t: torch.tanh(x) * t[:, None, None] + x, x, ts)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_timesteps():
    for n in (1, 4, 50):
        for shift in (0.3, 1.0, 3.0):
            t = timesteps(n, shift=shift)
            assert t.shape == (n + 1,) and t.dtype == torch.float32
            assert t[0] == 1.0 and t[-1] == 0.0 and bool((t[1:] < t[:-1]).all())
    torch.testing.assert_close(timesteps(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    torch.testing.assert_close(timesteps(2, shift=3.0)[1], torch.tensor(1.5 / 2.0))  # 3 * .5 / (1 + 2 * .5)
    assert bool((timesteps(8, shift=3.0) >= timesteps(8)).all())  # shift > 1 lingers at high noise
    for bad in (dict(num_steps=0), dict(num_steps=4, shift=0.0)):
        with pytest.raises(ValueError):
            timesteps(**bad)


@pytest.mark.parametrize("logit_normal", [(0.0, 1.0), None])
def test_training_times(logit_normal):
    def draw(seed):
        return sample_training_times((4096, 3), torch.Generator().manual_seed(seed), logit_normal=logit_normal)

    t = draw(0)
    assert t.shape == (4096, 3) and t.dtype == torch.float32
    assert torch.equal(t, draw(0)) and not torch.equal(t, draw(1))
    assert bool((t > 0).all() and (t < 1).all())
    assert abs(t.mean().item() - 0.5) < 0.02
    # std of sigmoid(N(0, 1)) is 0.208; of U(0, 1) it is 1 / sqrt(12) = 0.289.
    assert abs(t.std().item() - (0.208 if logit_normal else 0.289)) < 0.01


def test_flow_matching_loss():
    g = torch.Generator().manual_seed(0)
    x0, noise, pred = torch.randn(3, 2, 3, 4, 5, generator=g)  # each (B, T, N, C) = (2, 3, 4, 5)
    assert flow_matching_loss(velocity_target(x0, noise), x0, noise).item() == 0.0
    err = (pred - (noise - x0)) ** 2
    torch.testing.assert_close(flow_matching_loss(pred, x0, noise), err.mean())
    frame_w = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 0.5]])  # (B, T)
    torch.testing.assert_close(flow_matching_loss(pred, x0, noise, frame_w), (err * frame_w[:, :, None, None]).mean())
    elem_w = torch.rand(2, 3, 4, 5, generator=g)
    torch.testing.assert_close(flow_matching_loss(pred, x0, noise, elem_w), (err * elem_w).mean())
    with pytest.raises(ValueError, match="same shape"):
        flow_matching_loss(pred[:, :2], x0, noise)


def test_unknown_sampler_raises():
    with pytest.raises(ValueError, match=r"'rk4'.*\['dpm', 'euler', 'heun'\]"):
        sample("rk4", lambda x, t: x, torch.ones(1, 1), timesteps(2))
    with pytest.raises(ValueError, match="1-D"):
        sample("euler", lambda x, t: x, torch.ones(1, 1), torch.tensor(1.0))
