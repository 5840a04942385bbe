"""A stand-in `distilabel` package: distilabel's module paths, distilflow's objects.

Only on sys.path while distilabel's own unit tests run against distilflow
(tests/test_distilabel_suite.py). Every name comes from distilflow's public API; the only
stand-in is the Pipeline context manager, which distilflow does not have yet.
"""

__version__ = "1.5.3"
