"""Flag groups are tested on a fresh FlagValues each: no global state."""

import pytest
from absl import flags


@pytest.fixture
def parse():
    """``parse(define, "--a=1", ...)``: a FlagValues with ``define``'s flags,
    parsed from the given arguments."""

    def parse_flags(*defines_and_args):
        defines = [d for d in defines_and_args if callable(d)]
        args = [a for a in defines_and_args if isinstance(a, str)]
        flag_values = flags.FlagValues()
        for define in defines:
            define(flag_values)
        flag_values(["binary", *args])
        return flag_values

    return parse_flags
