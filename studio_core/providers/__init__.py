"""Image services behind one :class:`~studio_core.providers.base.Provider` protocol."""
