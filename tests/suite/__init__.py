"""Offline checks of the end-to-end suite itself: its scenarios against a fake gateway."""
