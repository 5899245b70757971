"""`/broadcast` and `/broadcasts`: news to opted-in people, for admins."""

from __future__ import annotations
