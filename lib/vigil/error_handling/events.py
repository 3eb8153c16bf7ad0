"""The publish/subscribe hub breakers, retries and the recovery manager publish on.

Defined in :mod:`vigil.events` (base layer, with the :class:`~vigil.events.Hook` reporting
attaches through); re-exported here, where the seed's error-handling names live.
"""

from __future__ import annotations

from vigil.events import EventPublisher, Hook, ReportTo, Subscriber

__all__ = ["EventPublisher", "Hook", "ReportTo", "Subscriber"]
