"""“Set up local generation”: the plan, the downloads and the first test image (see wizard.py)."""

from studio_gui.setup_wizard.wizard import SetupWizard

__all__ = ["SetupWizard"]
