from distilflow.tasks.images import image_from_str, image_to_str

__all__ = ["image_from_str", "image_to_str"]
