"""The reward tests share the sandbox tests' fixtures (a pool and a no-side-effect checker)."""

from tests.sandbox.conftest import no_side_effects, pool  # noqa: F401
