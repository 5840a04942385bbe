from distilflow.tasks.steps.apigen import execute_from_response, load_module_from_path

__all__ = ["execute_from_response", "load_module_from_path"]
