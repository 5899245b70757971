"""The test suite. aiogram is loaded as the bot loads it, its models built on first use
(bot/channels/on_demand.py), before any test module imports it."""

from bot.channels.on_demand import import_aiogram

import_aiogram()
