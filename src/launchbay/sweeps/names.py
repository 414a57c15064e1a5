"""The names a sweep leaves in the store (its file, its children's tags): shared by the controller,
the handle, the widget and the CLI, so that reading a sweep never imports the controller."""

from __future__ import annotations

from ..models import EARLY_TERMINATION_TAG

SWEEP_FILE = "sweep.json"
TERMINATION_TAG = EARLY_TERMINATION_TAG
SWEEP_TAG = "launchbay.sweep"
INDEX_TAG = "launchbay.sweep.index"
RETRY_TAG = "launchbay.sweep.retry_of"
PARAMS_ENV = "LAUNCHBAY_SWEEP_PARAMS"
#: a resumed trial's tag: the trial it goes on from (as a resumed run's ``launchbay.resume_of``)
RESUME_OF = "launchbay.resume_of"
