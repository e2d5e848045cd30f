"""Many ComfyUI servers (and RunPod endpoints) as one pool.

Qt-free and mostly pure: server descriptions (:mod:`.servers`), how to connect to one
(:mod:`.connection`, :mod:`.pinned_tls`), which server runs which job (:mod:`.scheduler`,
:mod:`.failover`), the RunPod serverless provider (:mod:`.runpod`) and batch prompt lists
(:mod:`.prompt_list`, :mod:`.wildcards`).
"""
