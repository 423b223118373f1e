"""Time-to-live conversion: the one place hours (the settings' unit) become Redis milliseconds."""

from __future__ import annotations

MS_PER_HOUR = 3_600_000


def ttl_ms(hours: float) -> int:
    """``hours`` as whole milliseconds, rounded, at least 1 (a positive TTL never becomes 0, "none")."""
    return max(1, round(hours * MS_PER_HOUR))
