from mnas.model.cost import compute_stats
from mnas.model.summary import describe
from mnas.search_space import get_preset


def test_describe_has_one_row_per_layer_of_the_stats_and_their_totals():
    spec = get_preset("mnasnet-a1")
    stats = compute_stats(spec)
    lines = describe(spec).splitlines()
    assert lines[1] == "blocks: " + ", ".join(spec.block_strings)
    rows = [line.split() for line in lines[4:-2]]
    assert [row[0] for row in rows] == [layer.name for layer in stats.layers]
    assert [(row[-2], row[-1]) for row in rows] == [
        (f"{layer.params:,}", f"{layer.macs:,}") for layer in stats.layers
    ]
    assert lines[-2].split() == ["total", "3,920,526", f"{stats.macs:,}"]
    assert lines[-1] == "parameters: 3.921M   multiply-adds: 312.2M"
