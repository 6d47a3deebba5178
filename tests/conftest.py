"""Shared test settings: quiet TensorFlow, deterministic hypothesis profile,
Ctrl-C deliverable to the processes the tests start."""

import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A test run started in the background of a non-interactive shell (`cmd &`)
# inherits SIGINT ignored, and so would every process it starts: the tests
# that stop a binary with Ctrl-C would wait for it forever. A terminal's
# foreground run, which CI and users have, already looks like this.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from hypothesis import settings  # noqa: E402

settings.register_profile("mnas", max_examples=200, deadline=None)
settings.load_profile("mnas")
