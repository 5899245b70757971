"""The files the bot draws for people: the `/stats` chart, QR posters, spreadsheets.

Pure functions from plain values to bytes (no database, no platform), so the chat, the shell
and the benchmarks draw the same thing. They are slow (tens of milliseconds and more): callers
run them in a worker thread.
"""
