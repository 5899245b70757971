"""Benchmarks: run with `make bench` (see `bench.signing`). aiogram is loaded as the bot
loads it (bot/channels/on_demand.py), before any benchmark imports it."""

from bot.channels.on_demand import import_aiogram

import_aiogram()
