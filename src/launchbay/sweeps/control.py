"""Keep a sweep's record true, as a target does for a run: the sweep's 'runner' is its controller
process (runcontrol.py has what every such control does)."""

from __future__ import annotations

from ..runcontrol import ControllerControl


class SweepControl(ControllerControl):
    """Follows and stops a sweep's controller; ``control_for`` finds the control of a child run."""

    type_name = "sweep"
