"""Install ComfyUI, a matching PyTorch and one model that fits the card, from pinned data.

``catalog`` reads ``resources/local_setup.json``; ``plan`` is a pure function from the GPU,
free disk and the catalog to what would be installed; ``installer`` downloads (resumable,
sha256-checked), unpacks into a staging folder, builds the Python environment and renames
the staging folder into place only when everything is there; ``first_start`` registers the
result as the managed server, starts it and runs a tiny test generation with the installed
model; ``update`` moves an install to the next pinned release by journaled renames and rolls
back when the new server does not answer; ``entered_sums`` holds the SHA-256 sums a user
pasted for files the app ships without one. Qt-free.
"""
