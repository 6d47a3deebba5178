"""Shared test settings: quiet TensorFlow, deterministic hypothesis profile."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hypothesis import settings  # noqa: E402

settings.register_profile("mnas", max_examples=200, deadline=None)
settings.load_profile("mnas")
