"""Channel adapters: Telegram, console (and, later, Messenger)."""
