"""Volunteer share codes and QR posters (`/code`), for admins."""

from __future__ import annotations
