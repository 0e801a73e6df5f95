"""Edge Harness: benchmark compressed vision models on edge boards."""

__version__ = "0.1.0"
