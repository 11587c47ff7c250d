"""The dream as an environment: Gymnasium (single and natively batched), an SB3
``VecEnv`` adapter (``worldenv.envs.sb3``) and PettingZoo (``parallel_env``).

All of them are thin layers over ``Dream`` (``dream.py``): a checkpoint's world
model, its bank of real start contexts and its scene's spaces, served as a
``DreamConfig`` says (``config=``, or its fields as keyword arguments).
"""

from worldenv.checkpoint import shipped_checkpoint
from worldenv.dream_config import DreamConfig
from worldenv.envs.dream import Dream
from worldenv.envs.multi_agent import env, parallel_env
from worldenv.envs.single import DiffusionWorldEnv
from worldenv.envs.vector import DiffusionWorldVectorEnv

__all__ = ["Dream", "DreamConfig", "DiffusionWorldEnv", "DiffusionWorldVectorEnv", "env", "parallel_env", "shipped_checkpoint"]
