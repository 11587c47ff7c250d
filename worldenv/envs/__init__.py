"""The dream as an environment: Gymnasium (single and natively batched), an SB3
``VecEnv`` adapter (``worldenv.envs.sb3``) and PettingZoo (``parallel_env``).

All of them are thin layers over ``Dream`` (``dream.py``): a checkpoint's world
model, its bank of real start contexts and its scene's spaces.
"""

from worldenv.checkpoint import shipped_checkpoint
from worldenv.envs.dream import Dream
from worldenv.envs.multi_agent import env, parallel_env
from worldenv.envs.single import DiffusionWorldEnv
from worldenv.envs.vector import DiffusionWorldVectorEnv

__all__ = ["Dream", "DiffusionWorldEnv", "DiffusionWorldVectorEnv", "env", "parallel_env", "shipped_checkpoint"]
