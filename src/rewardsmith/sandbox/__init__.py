"""The sandbox: where generated reward code runs, and the only place it is ever parsed.

Generated rewards never run, nor are even parsed, in the trainer's process. The pool
(:mod:`.pool`) starts confined worker processes (:mod:`._worker`) that parse, restrict, compile
and run the code and talk to the parent over bounded, schema-checked frames (:mod:`._protocol`).
See :mod:`.pool` for the list of what is and is not protected, layer by layer.

>>> from rewardsmith.sandbox import Limits
>>> Limits().memory_mb
1024
"""

from __future__ import annotations

from rewardsmith.sandbox._confine import Limits
from rewardsmith.sandbox.pool import SandboxPool
from rewardsmith.sandbox.results import CallResult, Outline, Statement, clean_text
from rewardsmith.sandbox.reward import SandboxedReward, default_pool

__all__ = [
    "CallResult",
    "Limits",
    "Outline",
    "SandboxPool",
    "SandboxedReward",
    "Statement",
    "clean_text",
    "default_pool",
]
