"""A fake ``adb`` and a fake ``benchmark_model``, as shell scripts.

The fake adb logs its argv and really executes ``adb shell`` strings with
``sh -c`` inside a temporary "device" directory, so quoting mistakes show up
as real breakage (or a real injected file), exactly as they would on a phone.

Environment of the fake adb:

* ``FAKE_ADB_LOG`` (argv of every call), ``FAKE_DEVICES`` (what ``adb
  devices`` lists, ``SERIAL\\tstate`` lines), ``FAKE_DEVICE_DIR`` (the device's
  filesystem), ``FAKE_DROP`` (the device vanishes during a run),
  ``FAKE_OLD_ADB`` (``adb shell`` always exits 0), ``FAKE_PUSH_FAIL``.
* A phone farm: with ``FAKE_DEVICE_ROOT`` each serial has its own filesystem,
  ``$FAKE_DEVICE_ROOT/SERIAL``, where ``/data/local/tmp`` points; a file
  ``$FAKE_DEVICE_ROOT/SERIAL.gone`` unplugs that phone (no longer listed, every
  command fails), and ``$FAKE_DEVICE_ROOT/SERIAL.model`` holds its model
  name (else ``FAKE_MODEL``, else Pixel 3); ``FAKE_ADB_TIMES`` collects ``SERIAL start|end SECONDS``
  lines around each benchmark run, to check that no phone runs two at once.

The fake benchmark_model records its argv in ``FAKE_BM_ARGV``, checks that
``--graph`` exists, sleeps ``FAKE_BM_SLEEP`` seconds and prints
``FAKE_BM_OUTPUT`` (or crashes, hangs, prints garbage: ``FAKE_BM_MODE``).
"""

from __future__ import annotations

import stat
from pathlib import Path

FAKE_ADB = r"""#!/bin/bash
printf '%s\0' "$@" >> "${FAKE_ADB_LOG:-/dev/null}"
printf '\036\n' >> "${FAKE_ADB_LOG:-/dev/null}"
gone() { [ -n "$FAKE_DEVICE_ROOT" ] && [ -e "$FAKE_DEVICE_ROOT/$1.gone" ]; }
if [ "$1" = "devices" ]; then
  echo "* daemon not running; starting now at tcp:5037" >&2
  echo "List of devices attached"
  if [ -n "$FAKE_DEVICES" ]; then
    printf '%b\n' "$FAKE_DEVICES" | while IFS= read -r line; do
      gone "${line%%[[:space:]]*}" || printf '%s\n' "$line"
    done
  fi
  echo
  exit 0
fi
if [ "$1" != "-s" ]; then echo "fake adb: device command without -s" >&2; exit 98; fi
serial="$2"; shift 2
if gone "$serial"; then echo "adb: device '$serial' not found" >&2; exit 1; fi
device="$FAKE_DEVICE_DIR"
map() { printf '%s' "$1"; }
if [ -n "$FAKE_DEVICE_ROOT" ]; then
  device="$FAKE_DEVICE_ROOT/$serial"; mkdir -p "$device"
  map() { printf '%s' "${1//\/data\/local\/tmp/$device}"; }
fi
case "$1" in
  push)
    target="$(map "$3")"
    if [ -n "$FAKE_PUSH_FAIL" ] && [[ "$3" == *.tflite ]]; then
      head -c 3 -- "$2" > "$target"; echo "adb: error: failed to copy: connection reset" >&2; exit 1
    fi
    cp -- "$2" "$target" || exit 1
    echo "$2: 1 file pushed, 0 skipped." ;;
  shell)
    shift
    cmd="$(map "$*")"
    if [ "$cmd" = "getprop ro.product.model" ]; then
      if [ -f "$device.model" ]; then cat "$device.model"; else echo "${FAKE_MODEL:-Pixel 3}"; fi
      exit 0
    fi
    if [ -n "$FAKE_DROP" ] && [[ "$cmd" == *--graph* ]]; then
      echo "INFO: STARTING!"
      echo "error: device '$serial' not found" >&2
      exit 1
    fi
    cd "$device" || exit 1
    timed=""
    if [ -n "$FAKE_ADB_TIMES" ] && [[ "$cmd" == *--graph* ]]; then timed=1; fi
    [ -n "$timed" ] && echo "$serial start $(date +%s.%N)" >> "$FAKE_ADB_TIMES"
    sh -c "$cmd"
    rc=$?
    [ -n "$timed" ] && echo "$serial end $(date +%s.%N)" >> "$FAKE_ADB_TIMES"
    if [ -n "$FAKE_OLD_ADB" ]; then exit 0; fi
    exit $rc ;;
  *) echo "fake adb: unknown command $1" >&2; exit 97 ;;
esac
"""

FAKE_BENCHMARK_MODEL = r"""#!/bin/bash
printf '%s\0' "$@" > "${FAKE_BM_ARGV:-/dev/null}"
graph=""
for a in "$@"; do case "$a" in --graph=*) graph="${a#--graph=}" ;; esac; done
if [ ! -f "$graph" ]; then echo "ERROR: Could not open '$graph'."; exit 1; fi
if [ -n "$FAKE_BM_SLEEP" ]; then sleep "$FAKE_BM_SLEEP"; fi
case "${FAKE_BM_MODE:-ok}" in
  ok) cat "$FAKE_BM_OUTPUT" ;;
  segv) echo "INFO: STARTING!"; kill -SEGV $$ ;;
  hang) echo "INFO: STARTING!"; exec sleep 60 ;;
  garbage) echo "Hello, world" ;;
  fail) echo "INFO: STARTING!"; echo "ERROR: Failed to allocate tensors!"; exit 1 ;;
esac
"""

#: A run of benchmark_model as a recent build prints it (7.0332 ms mean).
BENCHMARK_OUTPUT = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [1]
INFO: Graph: [/data/local/tmp/model.tflite]
INFO: Loaded model /data/local/tmp/model.tflite
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: The input model file size (MB): 17.1
INFO: Initialized session in 15.234ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=69 first=9120 curr=7250 min=7100 max=9120 avg=7301.5 std=280
INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=142 first=7012 curr=6981 min=6950 max=7420 avg=7033.2 std=81
INFO: Inference timings in us: Init: 15234, First inference: 9120, Warmup (avg): 7301.5, Inference (avg): 7033.2
INFO: Memory footprint delta from the start of the tool (MB): init=38.1 overall=45.2
"""  # noqa: E501


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def phone_farm(root: Path, serials: list[str], bm_sleep_s: float = 0.0) -> dict:
    """Fakes for several phones under ``root``: ``adb`` on the returned
    ``PATH`` entry, the ``benchmark_model`` binary, and the environment a
    phone host's processes need (``env``); ``times`` collects the runs."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    write_executable(bin_dir / "adb", FAKE_ADB)
    binary = write_executable(root / "benchmark_model", FAKE_BENCHMARK_MODEL)
    output = root / "bm.out"
    output.write_text(BENCHMARK_OUTPUT)
    devices = root / "devices"
    devices.mkdir(exist_ok=True)
    times = root / "times.log"
    env = {
        "FAKE_DEVICES": "\\n".join(f"{s}\\tdevice" for s in serials),
        "FAKE_DEVICE_ROOT": str(devices),
        "FAKE_ADB_TIMES": str(times),
        "FAKE_BM_OUTPUT": str(output),
        "FAKE_BM_SLEEP": str(bm_sleep_s) if bm_sleep_s else "",
    }
    return {
        "bin_dir": str(bin_dir),
        "binary": str(binary),
        "devices": devices,
        "times": times,
        "env": env,
    }


def unplug(devices: Path, serial: str) -> None:
    """The phone ``serial`` of a farm drops out (adb no longer sees it)."""
    (devices / f"{serial}.gone").touch()


def phone_runs(times: Path) -> dict[str, list[tuple[str, float]]]:
    """Every benchmark run of a farm as ``(start|end, seconds)`` events, by
    serial, in the order they were written (so overlapping runs of one phone
    show up as two starts in a row)."""
    events: dict[str, list[tuple[str, float]]] = {}
    if not times.exists():
        return events
    for line in times.read_text().splitlines():
        serial, what, when = line.split()
        events.setdefault(serial, []).append((what, float(when)))
    return events
