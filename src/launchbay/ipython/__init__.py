"""The notebook front: magics, run widgets, plots."""
