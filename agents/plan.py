"""Planning in imagination: a cross-entropy-method (CEM) planner that rolls candidate
action sequences in the batched dream before every real step, and acts in MuJoCo.

At each real step the dream is primed on the last ``--context`` real frames (and
the actions that led to them), then ``--candidates`` action sequences of
``--horizon`` steps are imagined in one batch: every candidate starts from the
same cache and the same noise (common random numbers), so they differ only by
their actions. Each sequence is scored by the reward head, summed while the
termination head says alive (``--survival hard``) or weighted by the probability it
gives that the episode still runs (``soft``, Dreamer's continuation weighting). Where
the reward is 1 per step alive (the cartpole), hard scores tell plans apart only by
when the dream ends them, and within a short horizon none ends; soft scores rank them
by how near they bring the pole to falling. The best ``--elites`` refit the Gaussian over
sequences, ``--iterations`` times; the first action of the mean is executed in
MuJoCo and the rest warm-starts the next step. Frames are never decoded: only
rewards are needed.

Two refinements from iCEM (Pinneri et al. 2020, sample-efficient CEM for real-time
planning) make a small budget plan better: ``--noise-color`` draws temporally
correlated action noise (power spectrum 1/f^beta over the horizon; 0 is white), so a
candidate pushes one way for several steps, which is how a reacher's arm is swung;
``--keep-elites`` lets an iteration's elites compete in the next one with the scores
they already have (no imagined step is spent on them again), and shifts them one step
to be candidates at the next real step.

``--imagine mujoco`` runs the same planner with MuJoCo itself as the model: every
candidate is stepped from a copy of the real scene's exact state, with the scene's
own reward. That is the planner's ceiling at the same budget; the gap from it to the
dream planner is what the dream's errors cost, the gap from it to a good policy is
what the planner's budget costs.

    python agents/plan.py --scene reacher --episodes 3 --candidates 16 --horizon 4 --iterations 2

Prints and writes ``OUT/plan-<scene>-seed<seed>/summary.json``: real return per episode,
beside a random policy on the same episodes, and planning time per real step.
"""

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.common import RunLog, ServingArgs, exit_with  # noqa: E402

logger = logging.getLogger("plan")


@dataclass
class Args(ServingArgs):
    scene: str = field(default="reacher", metadata={"help": "scene: reacher, cartpole or panorama"})
    imagine: Literal["dream", "mujoco"] = field(
        default="dream",
        metadata={"help": "the model the candidates are rolled in: the dream, or MuJoCo itself (the planner's ceiling)"},
    )
    checkpoint: str | None = field(default=None, metadata={"help": "dream bundle; unset: the scene's shipped one"})
    candidates: int = field(default=16, metadata={"help": "action sequences imagined per CEM iteration (one batch)"})
    horizon: int = field(default=4, metadata={"help": "imagined steps per sequence"})
    iterations: int = field(default=2, metadata={"help": "CEM iterations per real step"})
    elites: int = field(default=4, metadata={"help": "best sequences the Gaussian is refitted to"})
    spread: float = field(
        default=1.0, metadata={"help": "first iteration's standard deviation, as a fraction of half the action range"}
    )
    noise_color: float = field(
        default=0.0,
        metadata={"help": "exponent beta of the action noise's 1/f^beta power spectrum over the horizon (0: white, 2: smooth)"},
    )
    keep_elites: bool = field(
        default=False,
        metadata={
            "help": "elites compete again in the next iteration (scores kept) and, shifted one step, at the next real step"
        },
    )
    survival: Literal["hard", "soft"] = field(
        default="hard",
        metadata={
            "help": "imagined rewards count while the termination head says alive (hard) "
            "or weighted by its probability of alive (soft)"
        },
    )
    context: int = field(default=4, metadata={"help": "real frames that prime the dream at each real step"})
    episodes: int = field(default=3, metadata={"help": "real episodes scored"})
    max_steps: int | None = field(default=None, metadata={"help": "cut each real episode at this many steps"})
    seed: int = field(default=0, metadata={"help": "seed of the episodes and the imagined noise"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    out: str = field(default="runs/agents", metadata={"help": "output directory"})


@dataclass
class Present:
    """What a planner sees at a real step: the last real frames (T, H, W, 3), the actions
    that led to them (T, A), the episode's actions before those (P, A), and the scene's
    exact physical state (for ``--imagine mujoco``)."""

    frames: np.ndarray
    actions: np.ndarray
    past_actions: np.ndarray
    qpos: np.ndarray
    qvel: np.ndarray


class DreamImagination:
    """Candidates rolled in one batched dream, primed on the real frames."""

    def __init__(self, args: Args):
        from worldenv.envs.dream import Dream

        self.dream = Dream.load(args.candidates, args.dream_config(), scene=args.scene, checkpoint=args.checkpoint)
        self.action_space = self.dream.action_space
        self.survival = args.survival

    def returns(self, present: Present, plans: np.ndarray, seed: int) -> np.ndarray:
        """Imagined return of each plan (N, H, A) from the same real context."""
        model = self.dream.model
        # One context, broadcast to every candidate; the actions before it matter to a model
        # conditioned on more actions than the context holds (the reacher's 16).
        model.reset(present.frames[None], present.actions[None], seeds=[seed], past_actions=present.past_actions[None])
        steps = [model.advance(plans[:, h], decode=False) for h in range(plans.shape[1])]
        rewards = torch.stack([rewards.sum(-1) for _, rewards, _ in steps])
        return imagined_returns(rewards, torch.stack([logit for *_, logit in steps]), self.survival).numpy()


def imagined_returns(rewards: torch.Tensor, termination_logits: torch.Tensor, survival: str) -> torch.Tensor:
    """Each plan's return from its imagined rewards and termination logits (H, N): a step's
    reward counts as far as the episode is still running before it, by the termination
    head's decisions (``hard``) or its probabilities (``soft``)."""
    if survival == "soft":
        running = torch.sigmoid(-termination_logits)
    else:
        running = (termination_logits <= 0).float()
    before = torch.cumprod(torch.cat([torch.ones_like(running[:1]), running[:-1]]), dim=0)
    return (before * rewards).sum(0)


class MujocoImagination:
    """Candidates rolled in a private copy of the scene, restored to the real state each
    time; nothing is rendered."""

    def __init__(self, args: Args):
        from worldenv.scenes import scene_info

        self.scene = gym.make(scene_info(args.scene).env_id).unwrapped
        self.action_space = self.scene.action_space

    def returns(self, present: Present, plans: np.ndarray, seed: int) -> np.ndarray:
        scene, returns = self.scene, np.zeros(len(plans))
        for n, plan in enumerate(plans):
            scene.data.qpos[:], scene.data.qvel[:] = present.qpos, present.qvel
            mujoco.mj_forward(scene.model, scene.data)
            for action in plan:
                scene.apply_action(action)
                returns[n] += scene.reward(action)[0]
                if scene.is_terminated():
                    break
        return returns


def colored_noise(beta: float, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Standard Gaussian noise (N, H, ...) whose power spectrum along the horizon H falls
    as 1/f^beta: white at 0, ever smoother above. Shaped in the frequency domain; the
    constant component gets the lowest frequency's weight, so a plan may drift."""
    if beta == 0:
        return rng.standard_normal(shape).astype(np.float32)
    samples, horizon = shape[0], shape[1]
    frequencies = np.fft.rfftfreq(horizon)
    frequencies[0] = frequencies[1] if horizon > 1 else 1.0
    weights = frequencies ** (-beta / 2)
    coefficients = rng.standard_normal((2, samples, len(frequencies), *shape[2:]))
    spectrum = weights.reshape(-1, *[1] * (len(shape) - 2)) * (coefficients[0] + 1j * coefficients[1])
    noise = np.fft.irfft(spectrum, n=horizon, axis=1)
    # irfft keeps only the real part of the constant (and, for an even H, the Nyquist)
    # component; every other one enters twice (with its conjugate), real and imaginary
    # parts both: the variance of each entry.
    counted = np.full(len(frequencies), 4.0)
    counted[0] = 1.0
    if horizon % 2 == 0:
        counted[-1] = 1.0
    variance = np.sum(counted * weights**2) / horizon**2
    return (noise / np.sqrt(variance)).astype(np.float32)


def shifted(plans: np.ndarray) -> np.ndarray:
    """Plans (..., H, A) one real step later: the first action dropped, the last repeated."""
    return np.concatenate([plans[..., 1:, :], plans[..., -1:, :]], axis=-2)


class CEMPlanner:
    def __init__(self, args: Args):
        self.args = args
        self.world = DreamImagination(args) if args.imagine == "dream" else MujocoImagination(args)
        self.low, self.high = self.world.action_space.low, self.world.action_space.high
        self.mean = np.zeros((args.horizon, *self.low.shape), np.float32)
        self.carried = np.zeros((0, *self.mean.shape), np.float32)  # (E, H, A): the last real step's elites, shifted
        self.rng = np.random.default_rng(args.seed)

    def reset(self) -> None:
        self.mean[:] = (self.low + self.high) / 2
        self.carried = np.zeros((0, *self.mean.shape), np.float32)

    def act(self, present: Present, step: int) -> np.ndarray:
        a = self.args
        std = np.broadcast_to(a.spread * (self.high - self.low) / 2, self.mean.shape).copy()
        elites, elite_scores = self.carried[:0], np.zeros(0)
        for iteration in range(a.iterations):
            noise = colored_noise(a.noise_color, (a.candidates, *self.mean.shape), self.rng)
            plans = np.clip(self.mean + std * noise, self.low, self.high)
            plans[0] = np.clip(self.mean, self.low, self.high)  # the current mean is always a candidate
            if iteration == 0:
                plans[1 : 1 + len(self.carried)] = self.carried[: a.candidates - 1]
            scores = self.world.returns(present, plans, seed=a.seed * 100_003 + step)
            if a.keep_elites:
                # The same context, seed and noise score a plan the same in any batch
                # (common random numbers), so the kept scores need no new imagined steps.
                plans, scores = np.concatenate([plans, elites]), np.concatenate([scores, elite_scores])
            best = np.argsort(scores)[-a.elites :]
            elites, elite_scores = plans[best], scores[best]
            self.mean, std = elites.mean(0), elites.std(0) + 1e-3
        action = self.mean[0].copy()
        self.mean = shifted(self.mean)  # warm start for the next step
        if a.keep_elites:
            self.carried = shifted(elites)
        return action


def run_episode(env, choose, seed: int, args: Args) -> tuple[float, int]:
    frame, _ = env.reset(seed=seed)
    frames, actions = [frame], [np.zeros(env.action_space.shape, np.float32)]
    total, step, done = 0.0, 0, False
    while not done and (args.max_steps is None or step < args.max_steps):
        physics = env.unwrapped.data
        cut = max(len(actions) - args.context, 0)
        present = Present(
            np.stack(frames[cut:]),
            np.stack(actions[cut:]),
            np.stack(actions[:cut]) if cut else np.zeros((0, *env.action_space.shape), np.float32),
            physics.qpos.copy(),
            physics.qvel.copy(),
        )
        action = choose(present, step)
        frame, reward, terminated, truncated, _ = env.step(action)
        frames.append(frame)
        actions.append(np.asarray(action, np.float32))
        total, step, done = total + float(reward), step + 1, terminated or truncated
    return total, step


def run(args: Args) -> dict:
    import worldenv  # noqa: F401  registers the envs
    from worldenv.scenes import scene_info

    torch.set_num_threads(args.threads)
    suffix = "" if args.imagine == "dream" else f"-{args.imagine}"
    log = RunLog(Path(args.out) / f"plan-{args.scene}{suffix}-seed{args.seed}")
    planner = CEMPlanner(args)
    env = gym.make(scene_info(args.scene).env_id)
    env.action_space.seed(args.seed)
    planned, random, seconds, steps = [], [], 0.0, 0
    for episode in range(args.episodes):
        seed = 2_000_000 + args.seed * 1000 + episode
        planner.reset()
        started = time.perf_counter()
        total, length = run_episode(env, planner.act, seed, args)
        seconds, steps = seconds + time.perf_counter() - started, steps + length
        planned.append(total)
        random.append(run_episode(env, lambda *_: env.action_space.sample(), seed, args)[0])
        logger.info("episode %d: planner %.2f, random %.2f, %.2f s per real step", episode, total, random[-1], seconds / steps)
    env.close()
    summary = {
        "planner_return": float(np.mean(planned)),
        "planner_return_std": float(np.std(planned)),
        "random_return": float(np.mean(random)),
        "random_return_std": float(np.std(random)),
        "planner_returns": planned,
        "random_returns": random,
        "seconds_per_real_step": seconds / steps,
        "imagined_steps_per_real_step": args.candidates * args.horizon * args.iterations,
    }
    return log.summarize(args, summary)


if __name__ == "__main__":
    exit_with(Args, run, __doc__)
