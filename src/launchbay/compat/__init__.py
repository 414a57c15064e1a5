"""Compatibility layers that let code written for other tools run on launchbay (``compat.azureml``)."""
