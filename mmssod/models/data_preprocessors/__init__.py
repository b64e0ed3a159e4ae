"""Data preprocessors of mmssod (registered into the mmdet / mmpretrain model registries on import)."""

from .multi_view_cls import MultiViewClsDataPreprocessor

__all__ = ['MultiViewClsDataPreprocessor']
