"""The Qt front end of Cloud AI Art Studio. Everything Qt lives here; the logic lives in studio_core."""
