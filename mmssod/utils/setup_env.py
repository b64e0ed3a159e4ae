"""Registration entry point, as in other OpenMMLab packages."""

from __future__ import annotations


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmdet's and mmssod's modules and (optionally) make 'mmdet' the default scope.

    mmssod registers its components into the registries of the library whose scope they belong to
    (``mmdet.registry`` for detection parts, ``mmpretrain.registry`` for classification / pretraining
    parts), so configs that inherit ``mmdet::`` bases can name them with a plain ``type='X'``.

    Args:
        init_default_scope (bool): also set the default scope to 'mmdet'. Defaults to True.
    """
    from mmdet.utils import register_all_modules as register_mmdet_modules

    import mmssod  # noqa: F401  (importing registers every mmssod module)

    register_mmdet_modules(init_default_scope=init_default_scope)
