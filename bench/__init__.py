"""alamos benchmarks: alamos side by side with its peers, in one process and one run.

Run ``python -m bench`` (full run, a few minutes) or ``python -m bench --quick``
(under a minute; CI runs it for the harness only, never for the thresholds).
``python -m bench --help`` lists the options.

Every measurement is repeated in *rounds*: each round runs every selected case
once, in a rotating order, so that a burst of noise on a shared machine hits
the subject and its baseline alike.  A ratio against a baseline is the median
of the per-round ratios; absolute times are only comparable within one run.

The results go to ``bench/results/latest.json``, and ``docs/performance.md`` is
rendered from that file (``python -m bench --render`` re-renders it alone).

Modules:

* :mod:`bench.core`: cases, targets, calibration and the round-robin runner;
* :mod:`bench.cases`: the micro-benchmarks (spans, logs, metrics, peers);
* :mod:`bench.export`: export throughput to SQLite and PostgreSQL;
* :mod:`bench.memory`: bytes per queued span (tracemalloc);
* :mod:`bench.targets`: the targets of issue 5;
* :mod:`bench.profile`: cProfile of the hot paths;
* :mod:`bench.machine`: what the run ran on;
* :mod:`bench.report`: the console table and ``docs/performance.md``.
"""

__all__ = ["RESULTS_DIR"]

from pathlib import Path

#: Where ``latest.json`` is written.
RESULTS_DIR = Path(__file__).resolve().parent / "results"
