"""What every binary shares: how it runs, how it fails, and the run-wide flags.

The rule "an expected error is one line on stderr and a non-zero exit, never
a traceback" is written once, here: :func:`run_binary` parses the flags (a
bad or renamed flag is one line, exit 2) and runs ``main`` (an expected error
is one line, exit 1). Anything else is a bug and keeps its traceback.

So is the rule for stopping: Ctrl-C raises ``KeyboardInterrupt``, and
SIGTERM (or SIGHUP) raises :class:`Terminated`, a ``KeyboardInterrupt``, so
every loop stops the same way whatever stopped it: it cancels its running
work, leaves its journal recoverable (``--resume`` continues) and unlocks its
work directory on the way out. The binary then prints one line and exits
with 130 (Ctrl-C) or 128 + the signal's number (143 for SIGTERM).

Flag groups are defined by ``define_*`` functions that may be called more than
once (two groups can share a sub-group); each flag is declared in exactly one
place in ``mnas.flags``, so a name means the same thing in every binary.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from absl import app, flags

FLAGS = flags.FLAGS
DefineFn = Callable[..., None]

#: Exit status of a refused command line (bad flag, renamed flag, stray argument).
USAGE_EXIT = 2
#: Exit status of an expected failure after the flags were read.
ERROR_EXIT = 1
#: Exit status after Ctrl-C.
INTERRUPTED_EXIT = 130

#: Errors that bad input, a bad file or a failing device raise: ValueError
#: covers the project's own input errors (SpecError, DataError, WeightsError,
#: CheckpointError, SearchConfigError...), UnicodeDecodeError and
#: JSONDecodeError; OSError covers missing, unreadable and directory paths.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    RecursionError,  # deeply nested JSON
    app.UsageError,
    flags.Error,
)
#: Expected errors of modules that may not be imported; a module that was
#: never imported cannot have raised its error, so none of them is imported.
LAZY_EXPECTED_ERRORS: tuple[tuple[str, str], ...] = (
    ("mnas.latency.errors", "LatencyError"),  # includes LookupTableError
    ("mnas.search.trial", "JournalError"),
    ("tensorflow", "errors.OpError"),  # e.g. a garbage checkpoint
)


#: Signals that stop a binary as Ctrl-C does (a polite request to stop).
TERMINATION_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class FlagError(ValueError):
    """A flag value (or a combination of flags) that the binary refuses."""


class Terminated(KeyboardInterrupt):
    """A termination signal, raised in the main thread like Ctrl-C's
    ``KeyboardInterrupt`` so the same cleanup runs; ``except Exception``
    (a failed trial, a failed grid point) does not catch it."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"terminated by {signal.Signals(self.signum).name}")

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process it killed."""
        return 128 + self.signum


@contextlib.contextmanager
def termination_raises(
    signums: Iterable[int] = TERMINATION_SIGNALS,
) -> Iterator[None]:
    """While inside, each of ``signums`` raises :class:`Terminated` in the main
    thread, once: later ones are ignored, so the cleanup the first one started
    is not cut short (SIGKILL still ends a stuck process). A signal that was
    ignored when this began (``nohup``) stays ignored. Does nothing outside
    the main thread, where Python cannot install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = tuple(signums)
    previous = {s: signal.getsignal(s) for s in signums}
    state = {"raised": False}

    def handler(signum: int, frame) -> None:
        del frame
        if not state["raised"]:
            state["raised"] = True
            raise Terminated(signum)

    for signum, old in previous.items():
        if old is not signal.SIG_IGN:
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


def expected_errors() -> tuple[type[BaseException], ...]:
    """:data:`EXPECTED_ERRORS` plus those of the lazily imported modules."""
    found = list(EXPECTED_ERRORS)
    for module_name, attribute in LAZY_EXPECTED_ERRORS:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        value: Any = module
        for part in attribute.split("."):
            value = getattr(value, part, None)
        if isinstance(value, type):
            found.append(value)
    return tuple(found)


def one_line(error: BaseException) -> str:
    """The error's message on one line (multi-line messages are joined)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = lines[0]
    for line in lines[1:]:
        text += (" " if text.endswith((":", ".")) else "; ") + line
    return text


def fail(binary: str, message: str, status: int) -> None:
    """Prints ``binary: message`` on stderr and exits with ``status``."""
    with contextlib.suppress(OSError):  # a closed terminal or pipe
        sys.stdout.flush()
    print(f"{binary}: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def renamed_flag_message(argv: Iterable[str], renamed: Mapping[str, str]) -> str | None:
    """The refusal for the first flag of ``argv`` that ``renamed`` maps to a
    new name (``--old``, ``--old=v``, ``-old``, ``--noold``), else None."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if name in renamed:
            return f"--{name} was renamed: use --{renamed[name]}"
        if name.startswith("no") and name[2:] in renamed:
            return f"--{name} was renamed: use --no{renamed[name[2:]]}"
    return None


def parse_flags(binary: str, renamed: Mapping[str, str], argv: list[str]) -> list[str]:
    """absl's flag parsing with one-line refusals (absl prints two lines)."""
    message = renamed_flag_message(argv[1:], renamed)
    if message is not None:
        fail(binary, message, USAGE_EXIT)
    try:
        rest = FLAGS(argv)
    except flags.Error as error:
        fail(binary, one_line(error), USAGE_EXIT)
    if len(rest) > 1:
        fail(binary, f"unexpected arguments: {' '.join(rest[1:])}", USAGE_EXIT)
    return rest


def stopped(binary: str, stop: KeyboardInterrupt) -> None:
    """The one line and exit status of a binary stopped by Ctrl-C or a
    termination signal."""
    if isinstance(stop, Terminated):
        fail(binary, str(stop), stop.exit_status)
    fail(binary, "interrupted", INTERRUPTED_EXIT)


def guarded(binary: str, main: Callable[[list[str]], int | None]):
    """``main`` with every expected error turned into one line and exit 1."""

    @functools.wraps(main)
    def run_main(argv: list[str]) -> int | None:
        try:
            return main(argv)
        except KeyboardInterrupt as stop:
            stopped(binary, stop)
        except Exception as error:
            if not isinstance(error, expected_errors()):
                raise
            fail(binary, one_line(error), ERROR_EXIT)
        return None

    return run_main


def run_binary(
    binary: str,
    main: Callable[[list[str]], int | None],
    renamed: Mapping[str, str] | None = None,
) -> None:
    """``app.run(main)`` with this module's flag parsing, error rule and
    stopping rule (SIGTERM stops like Ctrl-C).

    ``renamed`` maps the binary's retired flag names to their new ones.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with termination_raises():
        try:
            app.run(
                guarded(binary, main),
                flags_parser=functools.partial(
                    parse_flags, binary, dict(renamed or {})
                ),
            )
        except KeyboardInterrupt as stop:  # while the flags were read
            stopped(binary, stop)


def quiet_tensorflow(flag_values: flags.FlagValues) -> None:
    """Keeps TensorFlow's and the converter's INFO chatter out of the output.

    Call before TensorFlow is imported; an explicit --verbosity wins.
    """
    import logging as std_logging

    from absl import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not flag_values["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)


def defines(first_flag: str) -> Callable[[DefineFn], DefineFn]:
    """Makes a ``define_*(flag_values)`` function a no-op once ``first_flag``
    (the first flag it defines) exists, so groups can share sub-groups."""

    def decorate(define: DefineFn) -> DefineFn:
        @functools.wraps(define)
        def define_once(flag_values: flags.FlagValues = FLAGS) -> None:
            if first_flag not in flag_values:
                define(flag_values)

        return define_once

    return decorate


def read_json(path: str, what: str, error: type[Exception] = FlagError) -> Any:
    """The JSON document at ``path``; ``error`` naming ``what`` and the path on
    a missing, unreadable, non-UTF-8, malformed or too deeply nested file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as failure:
        reason = failure.strerror or str(failure)
        raise error(f"cannot read {what} {path!r}: {reason}") from None
    except UnicodeDecodeError as failure:
        raise error(f"{what} {path!r} is not UTF-8 text: {failure.reason}") from None
    except RecursionError:
        raise error(f"{what} {path!r} is nested too deeply") from None
    except ValueError as failure:  # JSONDecodeError, too many digits
        raise error(f"{what} {path!r} is not valid JSON: {failure}") from None


def check_range(name: str, value: float, low: float, high: float) -> None:
    """FlagError naming ``--name`` and the bound ``value`` crosses (NaN
    crosses the lower one)."""
    if not value >= low:
        raise FlagError(f"--{name} must be >= {low}, got {value}")
    if value > high:
        raise FlagError(f"--{name} must be <= {high}, got {value}")


def check_finite(flag_values: flags.FlagValues, *names: str) -> None:
    """FlagError for the first of the float flags ``names`` that is inf or nan
    (None, an unset optional flag, passes)."""
    for name in names:
        value = flag_values[name].value
        if value is not None and not math.isfinite(value):
            raise FlagError(f"--{name} must be a finite number, got {value}")


def check_positive(flag_values: flags.FlagValues, *names: str) -> None:
    """FlagError for the first of the number flags ``names`` that is not > 0
    (None, an unset optional flag, passes)."""
    for name in names:
        value = flag_values[name].value
        if value is not None and not value > 0:
            raise FlagError(f"--{name} must be > 0, got {value}")


def flag_dict(flag_values: flags.FlagValues, names: Iterable[str]) -> dict[str, Any]:
    """``{name: --name's value}``: for configs whose fields are named as the
    flags are."""
    return {name: flag_values[name].value for name in names}


def check_folder(path: str | None, flag: str) -> None:
    """Refuses a ``--flag`` path that exists but is not a folder."""
    if path and os.path.exists(path) and not os.path.isdir(path):
        raise FlagError(f"--{flag} is not a folder: {path}")


def check_work_dir(work_dir: str) -> None:
    """Refuses, before anything is written, a work directory no run could use:
    a file, or one whose ``config.json`` is unreadable (named by its path)."""
    check_folder(work_dir, "work_dir")
    config = os.path.join(work_dir, "config.json")
    if os.path.lexists(config):
        saved = read_json(config, "work directory config")
        if not isinstance(saved, dict):
            raise FlagError(f"work directory config {config!r} is not a JSON object")


@defines("seed")
def define_seed_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_integer(
        "seed",
        0,
        "Seeds everything random in this run (data split, weights, sampling, "
        "the controller).",
        flag_values=flag_values,
    )


@defines("work_dir")
def define_work_dir_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string(
        "work_dir",
        None,
        "Folder for this run's state and results (config.json, journals, "
        "checkpoints); a search defaults to runs/<kind>-<date>-<time>.",
        flag_values=flag_values,
    )


@defines("resume")
def define_resume_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_bool(
        "resume",
        False,
        "Continue the run in --work_dir (the same config, apart from its "
        "resumable fields).",
        flag_values=flag_values,
    )


@defines("output_dir")
def define_output_dir_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string(
        "output_dir",
        None,
        "Folder for this run's result files (config.json and the binary's own).",
        flag_values=flag_values,
    )
