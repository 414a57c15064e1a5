"""File and tag names an AutoML run, its controller and its readers share."""

CONFIG_FILE = "automl.json"  # RUN_DIR/automl.json: the checked settings, data and target
STATE_FILE = "automl_state.json"  # RUN_DIR/automl_state.json: every trial, the best, the model (rewritten)
AUTOML_TAG = "launchbay.automl"  # on each trial: its AutoML run's id
INDEX_TAG = "launchbay.automl.index"
TRIAL_SCRIPT = "automl_trial.py"
MODEL_FILE = "outputs/model.pkl"
