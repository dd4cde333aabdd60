"""The farm's Docker worker images: recipes, tags, builds, pushes and listings.

The `farm images` command is registered by :func:`rustfarm.images.cli.add_commands`.
"""

from .recipes import current_reference

__all__ = ["current_reference"]
