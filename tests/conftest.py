"""Shared test configuration: Hypothesis profiles.

``ci`` (the default) runs 100 examples without deadlines, so slow CI machines never flake;
``dev`` is quicker for local runs: ``pytest --hypothesis-profile=dev``.
"""

from hypothesis import settings

settings.register_profile("ci", deadline=None, max_examples=100)
settings.register_profile("dev", deadline=None, max_examples=20)
settings.load_profile("ci")
