"""Cloud image providers. Each module is imported only when its service is first used."""
