"""distilabel's `utils.serialization`: the key of its serialization format's type information.

distilflow does not serialize steps in distilabel's format; the tests that check it are left out
(exclusions.py). Test modules import `TYPE_INFO_KEY` at module level, so the name is here.
"""

TYPE_INFO_KEY = "type_info"

__all__ = ["TYPE_INFO_KEY"]
