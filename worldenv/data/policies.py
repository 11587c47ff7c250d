"""Exploration policies for data collection.

A world model only learns the dynamics it was shown. Uniform noise keeps a
reacher's arm twitching near its start pose and drops a cartpole in a few steps,
so most of what a trained agent will see (long reaches, a balanced pole, a
camera that turns away and back) would never be in the data. The default
``mix`` switches, every few dozen steps, between white noise (full or small
amplitude), temporally correlated noise (strong, or gentle), and the scene's own
goal-directed expert (``goal_action``) perturbed by correlated noise, in
proportions each scene sets (``exploration_mix``): a cartpole under noise falls
within ten steps, so its expert balances it until a noisy segment makes it fall,
and gentle pushes let it fall under its own weight; a reacher under correlated
noise spins faster than its frames can show. ``roam`` steers the expert to setpoints
across (and past) the scene's range, where a scene defines one: a cartpole balanced
into its rail's end stops. ``push`` holds each action for a run of steps, often at a
bound, as controllers and planners do.
"""

from collections.abc import Callable

import numpy as np

from worldenv.scenes.base import MujocoScene


class UniformNoise:
    """White noise: no action can be told from the ones before it, so a world model
    must read each one to predict its frame."""

    name = "uniform"

    def __init__(self, amplitude: tuple[float, float] = (1.0, 1.0)):
        self.amplitude_range = amplitude

    def reset(self, scene: MujocoScene, rng: np.random.Generator) -> None:
        self.rng, self.dim = rng, scene.action_space.shape[0]
        low, high = self.amplitude_range
        # A fixed amplitude draws nothing: the datasets collected before amplitudes existed
        # stay reproducible.
        self.amplitude = low if low == high else rng.uniform(low, high)

    def __call__(self, scene: MujocoScene) -> np.ndarray:
        return self.rng.uniform(-self.amplitude, self.amplitude, self.dim).astype(np.float32)


class Jitter(UniformNoise):
    """White noise of a per-episode amplitude in [0.05, 0.5]: as unpredictable as uniform
    noise, at the small actions a policy that pays for control takes."""

    name = "jitter"

    def __init__(self):
        super().__init__(amplitude=(0.05, 0.5))


class SmoothNoise:
    """AR(1) (discretised Ornstein-Uhlenbeck) noise with a per-episode correlation
    and scale, so some episodes make slow sweeping motions and others jitter."""

    name = "smooth"

    def __init__(self, correlation: tuple[float, float] = (0.8, 0.98), scale: tuple[float, float] = (0.3, 1.0)):
        self.correlation_range, self.scale_range = correlation, scale

    def reset(self, scene: MujocoScene, rng: np.random.Generator) -> None:
        self.rng, self.dim = rng, scene.action_space.shape[0]
        self.correlation = rng.uniform(*self.correlation_range)
        self.scale = rng.uniform(*self.scale_range)
        self.value = rng.normal(0.0, self.scale, self.dim)

    def __call__(self, scene: MujocoScene) -> np.ndarray:
        # Stationary variance stays scale^2 whatever the correlation.
        innovation = self.rng.normal(0.0, self.scale * np.sqrt(1.0 - self.correlation**2), self.dim)
        self.value = self.correlation * self.value + innovation
        return np.clip(self.value, -1.0, 1.0).astype(np.float32)


class GentleNoise(SmoothNoise):
    """Small, slow pushes: what an unstable system does nearly on its own (a pole that
    leans and falls under its weight), which strong noise and the expert both hide."""

    name = "gentle"

    def __init__(self):
        super().__init__(correlation=(0.9, 0.98), scale=(0.0, 0.15))


class GoalDirected:
    """The scene's expert plus a little correlated noise, so the data holds the
    states a good policy visits and the corrections around them."""

    name = "goal"

    def __init__(self, noise_scale: float = 0.15):
        self.noise = SmoothNoise(correlation=(0.8, 0.95), scale=(noise_scale, noise_scale))

    def reset(self, scene: MujocoScene, rng: np.random.Generator) -> None:
        self.noise.reset(scene, rng)

    def __call__(self, scene: MujocoScene) -> np.ndarray:
        return np.clip(scene.goal_action() + self.noise(scene), -1.0, 1.0).astype(np.float32)


class Roam:
    """The scene's expert steered to a setpoint redrawn every ``hold`` steps from the
    scene's ``setpoint_range``, plus a little correlated noise. The default mix's expert
    holds the middle, so the data rarely shows what happens far from it; roaming shows the
    task done well across the whole range, and at its ends (a cartpole's end stops)."""

    name = "roam"

    def __init__(self, hold: tuple[int, int] = (40, 120), noise_scale: float = 0.15):
        self.hold = hold
        self.noise = SmoothNoise(correlation=(0.8, 0.95), scale=(noise_scale, noise_scale))

    def reset(self, scene: MujocoScene, rng: np.random.Generator) -> None:
        if scene.setpoint_range is None:
            raise ValueError(
                f"exploration policy 'roam' expects a scene whose expert can be steered "
                f"(a setpoint_range); {type(scene).__name__} has none"
            )
        self.rng, self.remaining, self.setpoint_range = rng, 0, scene.setpoint_range
        self.noise.reset(scene, rng)

    def __call__(self, scene: MujocoScene) -> np.ndarray:
        if self.remaining == 0:
            self.setpoint = float(self.rng.uniform(*self.setpoint_range))
            self.remaining = int(self.rng.integers(self.hold[0], self.hold[1] + 1))
        self.remaining -= 1
        return np.clip(scene.steered_action(self.setpoint) + self.noise(scene), -1.0, 1.0).astype(np.float32)


class Push:
    """Piecewise-constant pushes: each action entry holds a value for a run of steps
    (log-uniform in ``hold``, so short taps and long sweeps alike), half the time at a
    bound and otherwise uniform. A bang-bang controller, a planner at the action bounds
    or a PPO policy with saturated actions holds a push for many steps and drives the
    system to speeds that white noise never reaches; a world model shown only white
    noise predicts the effect of the average action there (DIAMOND issue #33)."""

    name = "push"

    def __init__(self, hold: tuple[int, int] = (1, 12), saturated_share: float = 0.5):
        self.hold, self.saturated_share = hold, saturated_share

    def reset(self, scene: MujocoScene, rng: np.random.Generator) -> None:
        self.rng, self.dim = rng, scene.action_space.shape[0]
        self.value = np.zeros(self.dim)
        self.remaining = np.zeros(self.dim, int)

    def __call__(self, scene: MujocoScene) -> np.ndarray:
        for entry in np.flatnonzero(self.remaining == 0):
            saturated = self.rng.random() < self.saturated_share
            self.value[entry] = self.rng.choice([-1.0, 1.0]) if saturated else self.rng.uniform(-1.0, 1.0)
            low, high = np.log(self.hold[0]), np.log(self.hold[1] + 1)
            self.remaining[entry] = int(np.exp(self.rng.uniform(low, high)))
        self.remaining -= 1
        return self.value.astype(np.float32)


class Mixture:
    """Switch between component policies at random segment boundaries, with the
    weights the scene asks for (``scene.exploration_mix``)."""

    name = "mix"

    def __init__(self, segment: tuple[int, int] = (10, 60)):
        self.segment = segment

    def reset(self, scene: MujocoScene, rng: np.random.Generator) -> None:
        mix = scene.exploration_mix
        self.policies = [POLICIES[name]() for name in mix]
        weights = np.array(list(mix.values()), float)
        self.weights = weights / weights.sum()
        self.rng = rng
        for policy in self.policies:
            policy.reset(scene, rng)
        self.remaining = 0

    def __call__(self, scene: MujocoScene) -> np.ndarray:
        if self.remaining == 0:
            self.active = self.policies[self.rng.choice(len(self.policies), p=self.weights)]
            self.remaining = int(self.rng.integers(self.segment[0], self.segment[1] + 1))
        self.remaining -= 1
        return self.active(scene)


POLICIES: dict[str, Callable] = {
    "uniform": UniformNoise,
    "jitter": Jitter,
    "smooth": SmoothNoise,
    "gentle": GentleNoise,
    "goal": GoalDirected,
    "roam": Roam,
    "push": Push,
    "mix": Mixture,
}


def make_policy(name: str):
    if name not in POLICIES:
        raise ValueError(f"unknown exploration policy {name!r}; expected one of {sorted(POLICIES)}")
    return POLICIES[name]()
