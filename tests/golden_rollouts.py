"""The shipped dreams' reference rollouts: each scene's served default dream, reset with
a fixed seed and driven by fixed actions, as frames, rewards and terminations.
``scripts/record_golden_rollouts.py`` writes them; ``test_golden_rollouts.py`` checks them."""

import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
SCENES = ("reacher", "cartpole", "panorama", "duo")
STEPS = 6
SEED = 3


def roll_out(scene: str) -> dict[str, np.ndarray]:
    """The served dream of ``scene`` from ``reset(seed=SEED)``, under ``STEPS`` actions drawn from
    a fixed generator; one thread, so the CPU kernels' reduction order is fixed too."""
    import worldenv  # noqa: F401  registers the envs

    torch.set_num_threads(1)
    env = gym.make("DiffusionWorld-v0", scene=scene)
    observation, _ = env.reset(seed=SEED)
    rng = np.random.default_rng(SEED)
    low, high = env.action_space.low, env.action_space.high
    frames, rewards, terminations = [observation], [], []
    for _ in range(STEPS):
        observation, reward, terminated, _, _ = env.step(rng.uniform(low, high).astype(np.float32))
        frames.append(observation)
        rewards.append(reward)
        terminations.append(terminated)
    env.close()
    return {
        "frames": np.stack(frames),
        "rewards": np.asarray(rewards, np.float64),
        "terminations": np.asarray(terminations),
        "cpu": np.asarray(torch.backends.cpu.get_cpu_capability()),
        "torch": np.asarray(torch.__version__),
    }
