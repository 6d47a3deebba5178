"""Weight-sharing evaluation (TuNAS-style) for the MnasNet search.

``mnas-search --evaluation=shared`` trains one supernet (``mnas.model.supernet``)
while the controller samples paths through it; a path's reward is its accuracy
on a held-out batch with the shared weights, combined with its lookup-table
latency. See ``loop`` for the search and its write order, ``weights`` for the
weight steps, ``config`` for the settings and their TuNAS counterparts.
"""
