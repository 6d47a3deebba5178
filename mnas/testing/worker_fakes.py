"""A fake evaluation for real worker processes (``SubprocessPool``).

A worker is started by the pool with the search process's environment and
gets only the task the search built, so the fake's options travel in the
environment variable ``MNAS_FAKE_OPTIONS`` (JSON): those of
``mnas.testing.fakes.fake_evaluate`` (``sleep_s``, ``fail_trials``,
``crash_trials``) plus ``events``, a file outside the work directory where
each evaluation appends ``{"event": "start"|"end", "trial_id", "pid",
"tflite_path"}``, so a test can see which worker process is busy with which
trial, and where it was told to write.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mnas.testing.fakes import fake_evaluate

#: What a ``SubprocessPool`` runs for ``env_fake_evaluate``.
ENV_FAKE_TARGET = "mnas.testing.worker_fakes:env_fake_evaluate"
OPTIONS_VARIABLE = "MNAS_FAKE_OPTIONS"


def fake_options() -> dict[str, Any]:
    return json.loads(os.environ.get(OPTIONS_VARIABLE, "{}"))


def _event(path: str | None, event: str, task: dict[str, Any]) -> None:
    if not path:
        return
    line = json.dumps(
        {
            "event": event,
            "trial_id": task["trial_id"],
            "pid": os.getpid(),
            "tflite_path": task.get("tflite_path"),
        }
    )
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def read_events(path: str) -> list[dict[str, Any]]:
    """The events written so far (a torn last line is skipped)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def env_fake_evaluate(task: dict[str, Any]) -> dict[str, Any]:
    """``fake_evaluate`` with the options of ``MNAS_FAKE_OPTIONS``."""
    options = fake_options()
    events = options.pop("events", None)
    _event(events, "start", task)
    result = fake_evaluate({**task, "fake": options})
    _event(events, "end", task)
    return result
