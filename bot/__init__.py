"""petitionbot: the application (configuration, CLI, channels, wiring)."""
