"""--quantize (mnas-export's list, mnas-latency's one) and int8 calibration."""

import pytest

from mnas.flags.eval import define_eval_data_flags
from mnas.flags.export import (
    check_calibration_flags,
    define_export_flags,
    quantization_from_flags,
    quantizations_from_flags,
)


def test_quantize_list_in_the_order_given(parse):
    assert quantizations_from_flags(parse(define_export_flags)) == (
        "none",
        "dynamic",
        "int8",
    )
    given = parse(define_export_flags, "--quantize=int8, Float,int8")
    assert quantizations_from_flags(given) == ("int8", "none")
    assert quantization_from_flags(parse(define_export_flags)) == "none"
    assert quantization_from_flags(parse(define_export_flags, "--quantize=int8")) == (
        "int8"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--quantize=fp16"], "--quantize: unknown quantization 'fp16'; choose from "
         "none,dynamic,int8"),
        (["--quantize="], "--quantize is empty; choose from none,dynamic,int8"),
    ],
)  # fmt: skip
def test_bad_quantize(parse, args, message):
    with pytest.raises(ValueError) as info:
        quantizations_from_flags(parse(define_export_flags, *args))
    assert str(info.value) == message


def test_latency_times_one_quantization(parse):
    with pytest.raises(ValueError) as info:
        quantization_from_flags(parse(define_export_flags, "--quantize=none,int8"))
    assert str(info.value) == "--quantize: give one quantization to time, got none,int8"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num_calibration_samples=0"], "--num_calibration_samples must be >= 1, got 0"),
        (["--representative_dataset=eval"],
         "--representative_dataset=eval needs --eval_dataset"),
    ],
)  # fmt: skip
def test_bad_calibration_flags(parse, args, message):
    flag_values = parse(define_export_flags, define_eval_data_flags, *args)
    with pytest.raises(ValueError) as info:
        check_calibration_flags(flag_values)
    assert str(info.value) == message
