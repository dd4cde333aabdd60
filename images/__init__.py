"""The farm's Docker worker images: recipes, tags, builds, pushes and listings.

The `farm images` command is registered by :func:`rustfarm.images.cli.add_commands`;
the image farm.yaml should pin for a target is ``recipes.current_reference``.
"""
