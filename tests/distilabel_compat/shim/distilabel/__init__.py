"""A stand-in `distilabel` package: distilabel's module paths, distilflow's objects.

Only on sys.path while distilabel's own unit tests run against distilflow
(tests/test_distilabel_suite.py). Every name comes from distilflow's public API.
"""

__version__ = "1.5.3"
