"""Local (no container) deployment: prerequisites, environments, and the server process runner."""
