"""A differentiable search without the derived network's training: per-epoch
lines, then the decision table (P(argmax) per decision) and the derived
architecture. For tuning the search recipe on a small space quickly.

    .venv/bin/python benchmarks/dnas_search.py tiny theta_learning_rate=0.1
    .venv/bin/python benchmarks/dnas_search.py mnasnet lut=~/.cache/mnas/lut/host-mnasnet.lut.jsonl

The first argument names the space (``tiny``: mnas.testing.dnas.TINY_SPACE
with its synthetic table, whose latencies stay under 1 ms, so FBNet's
``log(LAT)`` clamps and there is no latency pressure; ``mnasnet``: the default
space with ``lut=`` or, without it, a synthetic table); the rest are
``DnasConfig`` fields as ``name=value``. The work directory is
``/tmp/dnas-search-<space>`` (replaced).
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
import time


def main() -> int:
    from mnas.dnas.loop import DnasConfig, DnasSearch, load_latency
    from mnas.dnas.report import concentration, decision_table
    from mnas.search_space import MNASNET_SPACE

    name = sys.argv[1]
    fields = {}
    for item in sys.argv[2:]:
        key, value = item.split("=", 1)
        try:
            fields[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            fields[key] = value
    lut = fields.pop("lut", None)
    if name == "tiny":
        from mnas.testing.dnas import TINY_SPACE, tiny_latency

        space = TINY_SPACE
        latency, predictor = tiny_latency("block")
    elif lut:
        space = MNASNET_SPACE
        latency, predictor = load_latency(os.path.expanduser(lut), space, "block")
    else:
        from mnas.latency.lut.expected import ExpectedLatency
        from mnas.latency.lut.predictor import LatencyPredictor
        from mnas.testing.latency_models import synthetic_table

        space = MNASNET_SPACE
        predictor = LatencyPredictor(synthetic_table(space, num_classes=10))
        latency = ExpectedLatency(predictor, space, "block")
    work_dir = f"/tmp/dnas-search-{name}"
    shutil.rmtree(work_dir, ignore_errors=True)
    config = DnasConfig(work_dir=work_dir, measure=False, **fields)
    print(config, flush=True)
    start = time.perf_counter()
    search = DnasSearch(
        config, space=space, latency=latency, predictor=predictor, stream=sys.stdout
    )
    try:
        search.search()
    finally:
        search.close()
    probs = search.net.probabilities()
    print(decision_table(search.net.decisions, probs))
    print(concentration(probs))
    print("derived:", " ".join(search.net.derive().block_strings))
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
