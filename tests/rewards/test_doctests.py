"""The docstring examples of the reward modules are part of the test suite."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "rewardsmith.rewards",
    "rewardsmith.rewards.contract",
    "rewardsmith.rewards.base",
    "rewardsmith.sandbox._entry",
    "rewardsmith.sandbox",
    "rewardsmith.sandbox._protocol",
    "rewardsmith.sandbox.results",
    "rewardsmith.rewards.validation",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_importing_rewards_is_light():
    import subprocess
    import sys

    code = "import sys, rewardsmith.rewards; print('RestrictedPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
