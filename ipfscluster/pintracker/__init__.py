"""The pin tracker (``pin_tracker.maptracker``): local state, pin/unpin queue, sync, recover.

See :mod:`ipfscluster.pintracker.tracker` for the behaviour.
"""

from ipfscluster.pintracker.tracker import MSG, Goal, MapPinTracker

__all__ = ["MSG", "Goal", "MapPinTracker"]
