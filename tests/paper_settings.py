"""Helpers of the per-method ``test_paper_settings.py`` modules: resolve a config, compare it with a table."""

import os.path as osp

import pytest
from mmengine.config import Config

from tests.conftest import REPO_ROOT

NOT_PAPER = ('composited', 'cpu-smoke', 'demo')  # config names that are not a paper setting


def load(path: str) -> Config:
    """A config resolved with its bases (``mmdet::`` / ``mmseg::`` ones too), without importing mmssod."""
    return Config.fromfile(osp.join(REPO_ROOT, path), import_custom_modules=False)


def lookup(cfg, key: str):
    """The value of a dotted config key; ``hook:<type>`` picks a custom hook, integers index lists."""
    node = cfg
    for part in key.split('.'):
        if part.startswith('hook:'):
            (node,) = [h for h in node['custom_hooks'] if h['type'].split('.')[-1] == part[len('hook:') :]]
        elif isinstance(node, (list, tuple)):
            node = node[int(part)]
        else:
            node = node[part]
    return node


def as_plain(value):
    """Tuples and lists compare equal when their items do (configs turn some tuples into lists)."""
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    return value


def mismatches(cfg, expected: dict) -> dict:
    """``{key: (config value, expected value)}`` for every key of ``expected`` the config does not hold."""
    wrong = {}
    for key, want in expected.items():
        value = as_plain(lookup(cfg, key))
        if value != (pytest.approx(want) if isinstance(want, float) else as_plain(want)):
            wrong[key] = (value, want)
    return wrong
