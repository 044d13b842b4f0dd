"""Template tags of assignment."""
