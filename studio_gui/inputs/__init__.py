"""Widgets for a generation's image inputs (masks, references, init images)."""
