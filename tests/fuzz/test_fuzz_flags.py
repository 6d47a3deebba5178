"""Fuzzing the binaries' flag values, in-process: each config function of
``mnas.flags`` on a parsed ``FlagValues``, with one flag (or several) set to
random values of its type.

With one flag changed, the documented range below is the oracle: the
function must accept exactly the values inside it. With several changed, a
refusal must name one of them and an acceptance must keep each in range.
A value absl itself cannot parse (``--num_threads=x``) is absl's refusal,
which the binaries turn into a one-line usage error.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Callable

import pytest
from absl import flags
from hypothesis import given, settings
from hypothesis import strategies as st

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.data import (
    data_config_from_flags,
    define_proxy_flags,
    trainer_config_from_flags,
)
from mnas.flags.dnas import define_dnas_flags, dnas_config_from_flags
from mnas.flags.latency import define_latency_flags, latency_config_from_flags
from mnas.flags.reward import define_reward_flags, reward_config_from_flags
from mnas.flags.scale import (
    coefficients_from_flags,
    define_scale_flags,
    phis_from_flags,
)
from mnas.flags.search import define_search_flags, search_config_from_flags
from mnas.flags.train import define_train_flags, full_training_config_from_flags
from mnas.model.cost import compute_stats
from mnas.search_space import MAX_FILTERS, MAX_LAYERS, ArchSpec

_WORK_DIR = tempfile.mkdtemp(prefix="mnas-fuzz-flags-")


def _between(low, high, low_open=False, high_open=False):
    def inside(value) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return inside


@dataclasses.dataclass(frozen=True)
class Flag:
    """A fuzzed flag: its absl type, the range the config accepts (None: no
    oracle, only the weak property) and other words a refusal may use."""

    name: str
    kind: str  # "int", "float" or "text"
    valid: Callable[[object], bool] | None = None
    aliases: tuple[str, ...] = ()
    #: Whether ``valid`` holds whatever the other flags are (else it assumes
    #: their defaults, and only the one-flag test uses it).
    independent: bool = True


@dataclasses.dataclass(frozen=True)
class Target:
    define: Callable[[flags.FlagValues], None]
    build: Callable[[flags.FlagValues], object]
    flags: tuple[Flag, ...]
    base_args: tuple[str, ...] = ()
    check: Callable[[object], None] | None = None


def _check_arch(spec: ArchSpec) -> None:
    blocks = spec.scaled_blocks()
    assert sum(b.num_repeat for b in blocks) <= MAX_LAYERS
    assert max(b.output_filters * b.expand_ratio for b in blocks) <= MAX_FILTERS
    assert compute_stats(spec).params > 0


def _check_temperatures(config) -> None:
    """An accepted DNAS config anneals downward from a positive start."""
    assert 0 < config.final_temperature <= config.initial_temperature, config


def _coefficients_valid(name: str) -> Callable[[object], bool]:
    defaults = {"depth_coefficient": 1.2, "width_coefficient": 1.1,
                "resolution_coefficient": 1.15}  # fmt: skip

    def valid(value) -> bool:
        if not _between(1.0, 4.0)(value):
            return False
        values = {**defaults, name: value}
        product = (
            values["depth_coefficient"]
            * values["width_coefficient"] ** 2
            * values["resolution_coefficient"] ** 2
        )
        return abs(product - 2.0) <= 0.1

    return valid


def _phis_valid(value) -> bool:
    try:
        phis = [float(text) for text in str(value).split(",")]
    except ValueError:
        return False
    return bool(phis) and all(_between(0.0, 10.0)(phi) for phi in phis)


_SEED = Flag("seed", "int", _between(0, 2**32 - 1))
_CONTROLLER_SEED = Flag("seed", "int", _between(0, 2**31 - 1))
_PROXY = (
    Flag("proxy_resolution", "int", _between(8, 1024)),
    Flag("batch_size", "int", _between(1, 65536)),
    Flag("validation_fraction", "float", _between(0.0, 1.0, True, True)),
    Flag("max_train_examples", "int", _between(1, 2**31)),
    Flag("dataset", "text"),
)
_TRAINER = (
    Flag("proxy_epochs", "int", _between(1, 10_000), ("epochs",)),
    Flag("learning_rate", "float", _between(0.0, math.inf, True)),
)

TARGETS: dict[str, Target] = {
    "arch": Target(
        define_arch_flags,
        lambda fv: arch_from_flags(fv, default="mnasnet-a1"),
        (
            Flag("width_multiplier", "float", _between(0.0, 8.0, True)),
            Flag("depth_multiplier", "float", _between(0.0, 8.0, True)),
            Flag("resolution", "int", _between(8, 2048)),
            Flag("num_classes", "int", _between(1, 100_000)),
            Flag("arch", "text", None, ("preset", "block", "architecture")),
        ),
        check=_check_arch,
    ),
    "latency": Target(
        define_latency_flags,
        latency_config_from_flags,
        (
            Flag("num_threads", "int", _between(1, 256)),
            Flag("num_runs", "int", _between(1, 100_000)),
            Flag("cpus", "text"),
            Flag("taskset_mask", "text"),
            Flag("serial", "text"),
            Flag("benchmark_model", "text"),
            Flag("latency_cache", "text"),
        ),
    ),
    "proxy data": Target(define_proxy_flags, data_config_from_flags, (*_PROXY, _SEED)),
    "proxy trainer": Target(
        define_proxy_flags, trainer_config_from_flags, (*_TRAINER, _SEED)
    ),
    "scale": Target(
        define_scale_flags,
        coefficients_from_flags,
        tuple(
            Flag(
                name,
                "float",
                _coefficients_valid(name),
                (field, "alpha * beta"),
                independent=False,
            )
            for name, field in (
                ("depth_coefficient", "alpha"),
                ("width_coefficient", "beta"),
                ("resolution_coefficient", "gamma"),
            )
        )
        + (
            Flag(
                "tolerance",
                "float",
                lambda v: math.isfinite(v) and v >= abs(1.2 * 1.1**2 * 1.15**2 - 2),
                independent=False,
            ),
        ),
    ),
    "scale phis": Target(
        define_scale_flags, phis_from_flags, (Flag("phi", "text", _phis_valid),)
    ),
    "reward": Target(
        define_reward_flags,
        reward_config_from_flags,
        (
            Flag("target_ms", "float", _between(0.0, math.inf, True), ("target",)),
            Flag("reward_alpha", "float", _between(-10.0, 10.0)),
            Flag("reward_beta", "float", _between(-10.0, 10.0)),
        ),
    ),
    "search": Target(
        define_search_flags,
        lambda fv: search_config_from_flags(fv, _latency_config(), None),
        (
            Flag("num_trials", "int", _between(1, 1_000_000)),
            Flag("num_workers", "int", _between(1, 256)),
            Flag("top_k", "int", _between(1, 1_000_000)),
            Flag("trial_timeout_s", "float", _between(0.0, math.inf, True)),
            Flag("controller_batch_size", "int", _between(1, 4096), ("batch_size",)),
            Flag("controller_learning_rate", "float", _between(0.0, math.inf, True)),
            Flag("entropy_weight", "float", _between(0.0, math.inf)),
            Flag("max_consecutive_failures", "int", _between(0, 1_000_000)),
            Flag("deployment_resolution", "int", _between(32, 2048)),
            _CONTROLLER_SEED,
            *_PROXY,
            *_TRAINER,
        ),
        base_args=("--work_dir=" + _WORK_DIR,),
    ),
    "dnas": Target(
        define_dnas_flags,
        dnas_config_from_flags,
        (
            Flag("fbnet_alpha", "float", _between(0.0, math.inf, True)),
            Flag("fbnet_beta", "float", _between(0.0, math.inf)),
            Flag("proxyless_lambda", "float", _between(0.0, math.inf)),
            Flag("proxyless_target_ms", "float", _between(0.0, math.inf, True)),
            Flag(
                "search_epochs",
                "int",
                _between(2, 10_000),
                ("search_warmup_epochs",),
                independent=False,
            ),
            Flag("search_warmup_epochs", "int", _between(0, 5), independent=False),
            # The temperature falls from initial to final (defaults 5 and
            # 0.5): each range assumes the other flag's default, and
            # _check_temperatures holds the joint rule whatever both are.
            Flag(
                "initial_temperature",
                "float",
                _between(0.5, math.inf),
                ("final_temperature",),
                independent=False,
            ),
            Flag(
                "final_temperature",
                "float",
                _between(0.0, 5.0, True),
                ("initial_temperature",),
                independent=False,
            ),
            Flag("theta_fraction", "float", _between(0.0, 1.0, True, True)),
            Flag("search_batch_size", "int", _between(1, 65536)),
            Flag("weight_learning_rate", "float", _between(0.0, math.inf, True)),
            Flag("theta_learning_rate", "float", _between(0.0, math.inf, True)),
            Flag("steps_per_epoch", "int", _between(1, 2**31)),
            Flag("lut", "text"),
            *_PROXY,
            *_TRAINER,
        ),
        base_args=("--work_dir=" + _WORK_DIR,),
        check=_check_temperatures,
    ),
    "full training": Target(
        define_train_flags,
        full_training_config_from_flags,
        (
            Flag("epochs", "int", _between(1, 10_000)),
            Flag("batch_size", "int", _between(1, 65536)),
            Flag("base_learning_rate", "float", _between(0.0, math.inf, True)),
            Flag("warmup_epochs", "float", _between(0.0, 10_000.0)),
            Flag("lr_decay_rate", "float", _between(0.0, 1.0, True)),
            Flag("lr_decay_epochs", "float", _between(0.0, 10_000.0, True)),
            Flag("weight_decay", "float", _between(0.0, math.inf)),
            Flag("label_smoothing", "float", _between(0.0, 1.0, False, True)),
            Flag("moving_average_decay", "float", _between(0.0, 1.0, False, True)),
            Flag("dropout_rate", "float", _between(0.0, 1.0, False, True)),
            Flag("num_train_examples", "int", _between(1, 2**31)),
            Flag("max_steps_per_epoch", "int", _between(1, 2**31)),
        ),
        base_args=("--work_dir=" + _WORK_DIR,),
    ),
}


def _latency_config():
    from mnas.latency import LatencyConfig

    return LatencyConfig()


@pytest.fixture(scope="module", autouse=True)
def _import_configs_first():
    """The config functions import TensorFlow on first use; do it before the
    deadline applies."""
    for name in TARGETS:
        TARGETS[name].build(_parse(name, []))
    yield
    os.rmdir(_WORK_DIR)


def _text(kind: str) -> st.SearchStrategy[str]:
    """A flag value of ``kind`` as a command line would carry it."""
    if kind == "int":
        return st.one_of(
            st.integers(-3, 10),
            st.integers(-(2**40), 2**40),
            st.sampled_from([2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 10**30]),
            st.integers(0, 10**6),
        ).map(str)
    if kind == "float":
        return st.one_of(
            st.floats(),
            st.floats(-10.0, 10.0),
            st.floats(0.0, 1.0),
            st.sampled_from([0.0, -0.0, 1.0, 1e-320, 1e308, 1e309]),
        ).map(repr)
    return st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            ["", ",", "0-3", "0-999999999", "0,1", "f0", "0x", "zz", "0.5,1",
             "mnasnet-a1", "r999999999_k3_s11_e1_i32_o16", "r1_k\uff13_s11_e1_i32_o16",
             "{backend}", "{x}", "folder:", "nan", "1e9", "-1", "/nonexistent.json"]
        ),
    )  # fmt: skip


def _parse(target: str, args: list[str]) -> flags.FlagValues:
    flag_values = flags.FlagValues()
    TARGETS[target].define(flag_values)
    flag_values(["fuzz", *TARGETS[target].base_args, *args])
    return flag_values


def _value(flag: Flag, text: str):
    """The flag's parsed value (absl's parser is the reference)."""
    if flag.kind == "int":
        return int(text)
    if flag.kind == "float":
        return float(text)
    return text


def _run(fuzz, target: str, changed: dict[Flag, str]):
    """Parses and builds; None when absl refuses to parse."""
    args = [f"--{flag.name}={text}" for flag, text in changed.items()]
    try:
        flag_values = _parse(target, args)
    except flags.Error:
        fuzz.count(f"flags: {target}", "refused by absl's parser")
        return None
    return fuzz.run(f"flags: {target}", TARGETS[target].build, flag_values)


@st.composite
def one_flag(draw):
    target = draw(st.sampled_from(sorted(TARGETS)))
    flag = draw(st.sampled_from(TARGETS[target].flags))
    return target, flag, draw(_text(flag.kind))


@settings(settings.get_profile("mnas-fuzz"))
@given(one_flag())
def test_one_flag_at_a_time(fuzz, case):
    target, flag, text = case
    outcome = _run(fuzz, target, {flag: text})
    if outcome is None:
        return
    names = (flag.name, *flag.aliases)
    valid = None if flag.valid is None else flag.valid(_value(flag, text))
    if outcome.accepted:
        assert valid is not False, f"--{flag.name}={text} accepted ({target})"
        if TARGETS[target].check is not None:
            TARGETS[target].check(outcome.value)
    else:
        assert valid is not True, (
            f"--{flag.name}={text} refused ({target}): {outcome.message}"
        )
        fuzz.refused(outcome, names, f"--{flag.name}={text}")


@st.composite
def several_flags(draw):
    target = draw(
        st.sampled_from([t for t in sorted(TARGETS) if len(TARGETS[t].flags) > 1])
    )
    chosen = draw(
        st.lists(
            st.sampled_from(TARGETS[target].flags),
            min_size=2,
            max_size=4,
            unique_by=lambda f: f.name,
        )
    )
    return target, {flag: draw(_text(flag.kind)) for flag in chosen}


@settings(settings.get_profile("mnas-fuzz"))
@given(several_flags())
def test_several_flags_at_once(fuzz, case):
    target, changed = case
    outcome = _run(fuzz, target, changed)
    if outcome is None:
        return
    shown = " ".join(f"--{f.name}={t}" for f, t in changed.items())
    if outcome.accepted:
        for flag, text in changed.items():
            if flag.valid is not None and flag.independent:
                assert flag.valid(_value(flag, text)), f"{shown} accepted ({target})"
        if TARGETS[target].check is not None:
            TARGETS[target].check(outcome.value)
    else:
        names = [name for flag in changed for name in (flag.name, *flag.aliases)]
        fuzz.refused(outcome, names, shown)
