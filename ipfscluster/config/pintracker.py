"""``pin_tracker.maptracker``: the local pin tracker (0.3.x additions, reference §3.6).

- ``concurrent_pins`` (1): pin workers; 1 is the serialized queue of 0.3.0.
- ``max_pin_queue_size`` (4096): operations in the queue at once.  A pin that
  finds it full waits in the tracker as ``pin_queued`` (only its CID is kept)
  and joins the queue, in order, as soon as there is room; an unpin that finds
  it full is ``unpin_error`` "unpin queue is full".
- ``pinning_timeout`` (1h0m0s), ``unpinning_timeout`` (5m0s): how long one pin or
  unpin operation may run before it is an error.
"""

from __future__ import annotations

import attrs

from ipfscluster.config.base import DurationKind, IntKind, Section, setting
from ipfscluster.config.durations import Duration


@attrs.frozen
class MapTrackerConfig(Section):
    """The ``pin_tracker.maptracker`` section."""

    PATH = "pin_tracker.maptracker"

    pinning_timeout: Duration = setting(DurationKind(), Duration.parse("1h0m0s"))
    unpinning_timeout: Duration = setting(DurationKind(), Duration.parse("5m0s"))
    max_pin_queue_size: int = setting(IntKind(minimum=1), 4096)
    concurrent_pins: int = setting(IntKind(minimum=1), 1)
