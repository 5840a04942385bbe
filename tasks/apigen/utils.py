"""distilabel's path for APIGen's helpers (`distilabel.steps.tasks.apigen.utils`).

Their homes are `function_call.py` (running a generated call) and `function_library.py` (loading
the functions) beside this file.
"""

from distilflow.steps.tasks.apigen.function_call import execute_from_response
from distilflow.steps.tasks.apigen.function_library import load_module_from_path

__all__ = ["execute_from_response", "load_module_from_path"]
