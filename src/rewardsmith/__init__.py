"""rewardsmith: search for reward functions for GRPO post-training on math reasoning.

Importing the package does no heavy work: models, datasets and trainers are imported where used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
