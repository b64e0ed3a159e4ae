"""Optional tqdm progress bars for the builders."""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

T = TypeVar('T')


def progress_bar(iterable: Iterable[T], enable: bool = True, desc: str = '') -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar (on stderr) when ``enable`` and tqdm is installed.

    Args:
        iterable (Iterable): Items to iterate.
        enable (bool): Show the bar. Defaults to True.
        desc (str): Bar label. Defaults to ''.

    Returns:
        Iterator: The same items.
    """
    if not enable:
        return iter(iterable)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a runtime requirement
        return iter(iterable)
    return iter(tqdm(iterable, desc=desc, unit='img', dynamic_ncols=True, mininterval=0.5))
