"""Files on disk: atomic writes, saved images with metadata, the gallery index."""
