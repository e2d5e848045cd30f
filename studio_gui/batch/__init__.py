"""Batch runs in the window: the Batch dialog and the Generate tab's button that opens it."""
