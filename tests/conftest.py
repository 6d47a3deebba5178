"""Shared test settings: quiet TensorFlow, deterministic hypothesis profile,
Ctrl-C deliverable to the processes the tests start."""

import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A test run started in the background of a non-interactive shell (`cmd &`)
# inherits SIGINT ignored, one started under `nohup` SIGHUP ignored, and so
# would every process it starts (an ignored signal survives exec): the tests
# that stop a binary with that signal would wait for it forever (seen twice,
# SIGINT and SIGHUP). A terminal's foreground run, which CI and users have,
# already looks like this.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
for _signum in (signal.SIGHUP, signal.SIGTERM):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, signal.SIG_DFL)

from hypothesis import settings  # noqa: E402

settings.register_profile("mnas", max_examples=200, deadline=None)
settings.load_profile("mnas")
