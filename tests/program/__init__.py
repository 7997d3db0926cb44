"""Whole-program tests: URN snapshots, the component contract, the import graph, the
flavour seam, credentials."""
