"""The progress line and the end-of-search table."""

import io

from mnas.search.display import SearchDisplay, best_table, trial_line
from mnas.search.trial import TrialRecord
from mnas.search_space import get_preset


def _record(trial_id, status="COMPLETED", reward=0.5):
    return TrialRecord(
        trial_id=trial_id,
        status=status,
        proposal_id=trial_id,
        actions=(0,),
        accuracy=0.75,
        latency_ms=6.125,
        reward=reward,
    )


def test_trial_line_shows_the_trial_and_the_best_so_far():
    assert trial_line(_record(3), _record(1, reward=0.625)) == (
        "trial 3: acc 0.750 lat 6.12 ms reward 0.5000 | best: trial 1 reward "
        "0.6250 (acc 0.750, 6.12 ms)"
    )
    assert trial_line(_record(4, "FAILED"), None) == "trial 4: FAILED"


def test_the_display_counts_from_the_trials_finished_before_a_resume():
    stream = io.StringIO()
    display = SearchDisplay(10, stream)
    display.on_search_begin(4)
    display.on_trial_end(_record(4), [_record(4)])
    line = stream.getvalue().splitlines()[0]
    assert line.startswith("[############............] 5/10  50% elapsed ")
    assert line.endswith(
        "| trial 4: acc 0.750 lat 6.12 ms reward 0.5000 | best: trial 4 reward "
        "0.5000 (acc 0.750, 6.12 ms)"
    )


def test_best_table_has_a_row_per_entry_with_size_and_blocks():
    spec = get_preset("mnasnet-small")
    entry = {
        "rank": 1,
        "trial_id": 9,
        "reward": 0.51234,
        "accuracy": 0.7,
        "latency_ms": 3.456,
        "block_strings": list(spec.block_strings),
        "arch": spec.to_dict(),
    }
    lines = best_table([entry]).splitlines()
    assert lines[0].split() == [
        "rank",
        "trial",
        "reward",
        "accuracy",
        "latency",
        "ms",
        "params",
        "M",
        "MACs",
        "M",
        "blocks",
    ]
    assert lines[2].split()[:5] == ["1", "9", "0.512", "0.700", "3.460"]
    assert lines[2].endswith(" ".join(spec.block_strings))
