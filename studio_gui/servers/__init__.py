"""Settings → ComfyUI servers: the pool's server list and its entry form."""
