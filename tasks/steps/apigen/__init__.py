"""APIGen's non-model step: executing generated function calls against a library of Python functions.

    from distilflow.tasks.steps.apigen import APIGenExecutionChecker, execute_from_response, load_module_from_path
"""

from distilflow.tasks.steps.apigen.execution_checker import APIGenExecutionChecker
from distilflow.tasks.steps.apigen.function_call import FunctionResult, execute_from_response
from distilflow.tasks.steps.apigen.function_library import FunctionLibrary, load_module_from_path

__all__ = ["APIGenExecutionChecker", "FunctionLibrary", "FunctionResult", "execute_from_response", "load_module_from_path"]
