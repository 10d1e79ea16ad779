"""The photo-check fixtures (a class with issued forms, its parent), shared by the files
that photograph forms."""

from tests.parents.test_checks import parent, world

__all__ = ["parent", "world"]
