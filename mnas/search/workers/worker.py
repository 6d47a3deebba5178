"""A worker process of the search: evaluates candidates sent on stdin.

Protocol: one JSON object per line on stdin, ``{"trial_id": N, "task": {...}}``;
one JSON line per task on the original stdout, ``{"trial_id": N, "ok": true,
"result": {...}}`` or ``{"ok": false, "error": "...", "kind": "..."}``.
Anything else the process prints goes to stderr (the worker's log), so library
output can never corrupt the protocol.

Usage: ``python -m mnas.search.workers.worker MODULE:FUNCTION``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


def _load(target: str):
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise SystemExit(f"worker target must be MODULE:FUNCTION, got {target!r}")
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(
            "usage: python -m mnas.search.workers.worker MODULE:FUNCTION",
            file=sys.stderr,
        )
        return 2
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints go to the log
    sys.stdout = sys.stderr
    evaluate = _load(argv[1])
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        trial_id = message["trial_id"]
        print(f"--- trial {trial_id}", file=sys.stderr, flush=True)
        try:
            result = evaluate(message["task"])
            reply = {"trial_id": trial_id, "ok": True, "result": result}
        except Exception as error:  # noqa: BLE001 - reported as a FAILED trial
            traceback.print_exc()
            reply = {
                "trial_id": trial_id,
                "ok": False,
                "kind": type(error).__name__,
                "error": f"{type(error).__name__}: {error}",
            }
        protocol.write(json.dumps(reply) + "\n")
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
