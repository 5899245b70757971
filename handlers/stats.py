"""`/stats`: the figures and a chart, for admins."""

from __future__ import annotations
