"""Install ComfyUI, a matching PyTorch and one model that fits the card, from pinned data.

``catalog`` reads ``resources/local_setup.json``; ``plan`` is a pure function from the GPU,
free disk, the platform, git's presence and the catalog to what would be installed and where
ComfyUI comes from (Windows: the portable ``.7z``, unpacked by ``archive7z``; elsewhere the
pinned git commit, fetched and verified by ``gitsource``; a release zip by ``archive``);
``installer`` downloads (resumable, sha256-checked), unpacks into a staging folder, builds the
Python environment (not for the portable build, which brings its own) and renames the
staging folder into place only when everything is there; ``first_start`` registers the
result as the managed server, starts it and runs a tiny test generation with the installed
model; ``update`` moves an install to the next pinned release by journaled renames and rolls
back when the new server does not answer; ``entered_sums`` holds the SHA-256 sums a user
pasted for files the app ships without one. Qt-free.
"""
