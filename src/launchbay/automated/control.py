"""Keep an AutoML run's record true, as a target does for a run: its 'runner' is its controller process
(runcontrol.py has what every such control does)."""

from __future__ import annotations

from ..runcontrol import ControllerControl


class AutoMLControl(ControllerControl):
    """Follows and stops an AutoML run's controller; ``control_for`` finds the control of a trial."""

    type_name = "automl"
