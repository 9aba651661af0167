"""Settings for the whole test session.

The default suite runs on two xdist workers on a two-core machine. OpenMP's
default of one thread per core per process (scikit-learn's k-means, LightGBM)
then puts four spinning threads on two cores, and each pool waits for its
slowest thread: k-means selection on 1,200 clients took 28 s of CPU instead of
3.9 s, LightGBM on 4,000 rows 86 s instead of 13 s (same predictions). One
OpenMP thread per worker process; a value set by the caller wins.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
