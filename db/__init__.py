"""The data layer: models, sessions, queries, migrations."""
