"""smartgate package."""
