"""The one place that turns a recipe (recipe.py) into pixels (renderer.py)."""
