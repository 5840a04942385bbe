import pathlib
import sys

# Tests import the packages of this checkout, whatever else is installed.
ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
