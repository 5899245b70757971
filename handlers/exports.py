"""`/export`: the signatures as a spreadsheet, for admins."""

from __future__ import annotations
