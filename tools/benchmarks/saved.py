"""Reuse of finished benchmark runs: a result JSON is reused only when it was made with equal settings."""

import json
import os.path as osp
from typing import Optional


def saved_run(path: str, settings: dict) -> Optional[dict]:
    """The result saved at ``path`` when its ``settings`` equal ``settings``, else None.

    Args:
        path (str): A result JSON holding a ``settings`` dict beside the numbers.
        settings (dict): What decides the result (flags, arm, seed, config digest ...).

    Returns:
        dict | None: The saved result, or None when it must be recomputed.
    """
    if not osp.isfile(path):
        return None
    with open(path) as f:
        res = json.load(f)
    return res if res.get('settings') == settings else None
