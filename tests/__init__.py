"""The test suite: a package, so helpers are imported by path (``tests.hostile.hostile_support``)."""
