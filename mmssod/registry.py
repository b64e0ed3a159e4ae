"""The ``mmssod`` config package and registry scope, so that configs can inherit ``mmssod::<config>``.

MMEngine resolves ``_base_ = ['<package>::<config>']`` and :func:`mmengine.hub.get_config` through its
``MODULE2PACKAGE`` table and the installed package's ``.mim/configs``; importing this module adds
``mmssod`` to that table.

A base loaded as ``mmssod::`` gets ``_scope_='mmssod'`` on each of its dicts that has a ``type`` and no scope
yet (hooks, pipelines, datasets, ...), so MMEngine then builds them through the registries of scope
``mmssod``. mmssod has no registries of its own: its components are registered into mmdet's, mmpretrain's
and mmseg's. The registries defined here make the ``mmssod`` scope transparent: a type is looked up in the
scope the build runs in (the config's ``default_scope``, or the enclosing build's), then in mmdet,
mmpretrain and mmseg, in that order.
"""

from __future__ import annotations

import importlib

from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import DefaultScope, Registry
from mmengine.registry import root as mmengine_root

SCOPE = 'mmssod'
#: Libraries whose registries hold mmssod's components, in lookup order after the enclosing scope.
LIBRARIES = ('mmdet', 'mmpretrain', 'mmseg')

MODULE2PACKAGE.setdefault(SCOPE, 'mmssod')  # `mmssod::` in `_base_` and mmengine.hub.get_config


def enclosing_scope() -> str | None:
    """The scope a build of scope ``mmssod`` runs in: the newest default scope that is not ``mmssod``.

    MMEngine switches the default scope to a dict's ``_scope_`` for the time of its build, keeping the
    earlier scopes in order (:class:`~mmengine.registry.DefaultScope` instances).

    Returns:
        str | None: e.g. ``'mmdet'`` under a runner whose config sets ``default_scope='mmdet'``; None when
        no other scope is set.
    """
    for instance in reversed(list(DefaultScope._instance_dict.values())):  # MMEngine keeps them in order
        if instance.scope_name != SCOPE:
            return instance.scope_name
    return None


class TransparentScopeRegistry(Registry):
    """A child of one of MMEngine's root registries, with scope ``mmssod``, that builds from the libraries.

    Args:
        root (Registry): the MMEngine root registry (e.g. ``mmengine.registry.MODELS``); the build function
            is the root's.
    """

    def __init__(self, root: Registry):
        super().__init__(root.name, parent=root, scope=SCOPE)

    def get(self, key: str):
        """The class or function registered as ``key`` in the enclosing scope, else in mmdet / mmpretrain /
        mmseg; a key with its own scope prefix (``'mmdet.RandomFlip'``) goes to that scope."""
        scope, _ = self.split_scope_key(key)
        if scope is not None:
            return self.parent.get(key)
        scopes = dict.fromkeys(s for s in (enclosing_scope(), *LIBRARIES) if s not in (None, SCOPE))
        for name in scopes:
            registry = self._library_registry(name)
            found = registry.get(key) if registry is not None else None
            if found is not None:
                return found
        return self.parent.get(key)

    def _library_registry(self, scope: str) -> Registry | None:
        if scope == self.parent.scope:
            return self.parent
        try:  # a library's registry module attaches its registries to the root
            importlib.import_module(f'{scope}.registry')
        except ImportError:
            pass  # not installed, or a scope without a registry module: only what is attached already
        return self.parent._search_child(scope)


#: One transparent ``mmssod`` registry under each of MMEngine's root registries, by the root's name.
REGISTRIES = {
    name: TransparentScopeRegistry(registry)
    for name, registry in vars(mmengine_root).items()
    if isinstance(registry, Registry)
}
