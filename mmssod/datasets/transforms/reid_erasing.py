"""Random Erasing (Zhong et al., AAAI 2020) with the patch drawn as SpCL's official code draws it.

mmpretrain's :class:`~mmpretrain.datasets.transforms.RandomErasing` draws the aspect ratio log-uniformly and
makes one draw, clipped to the image. The re-ID codes (SpCL among them) draw the aspect ratio uniformly in
``[r, 1 / r]`` (r = 0.3) and retry up to 100 times until the patch fits strictly inside the image, leaving
the image unchanged when no draw fits. Uniform sampling on [0.3, 3.33] puts 77% of the draws above 1,
i.e. patches taller than wide, which fit a 256 x 128 person crop.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmdet.registry import TRANSFORMS
from mmpretrain.datasets.transforms import RandomErasing

ASPECT_SAMPLINGS = ('uniform', 'log-uniform')


def sample_erasing_patch(
    img_h: int,
    img_w: int,
    area_range: Tuple[float, float] = (0.02, 0.4),
    aspect_range: Tuple[float, float] = (0.3, 1 / 0.3),
    aspect_sampling: str = 'uniform',
    max_attempts: int = 100,
    rng: Optional[np.random.RandomState] = None,
) -> Optional[Tuple[int, int, int, int]]:
    """Draw an erasing patch as the re-ID codes do, or None when no draw fits.

    Each attempt draws the area fraction ``s ~ U(area_range)`` and the aspect ratio ``a`` (height / width,
    uniform or log-uniform in ``aspect_range``), sets ``h = round(sqrt(s H W a))``, ``w = round(sqrt(s H W /
    a))`` and accepts the patch when ``h < H`` and ``w < W``; its top-left corner is then uniform over
    ``[0, H - h] x [0, W - w]``.

    Args:
        img_h (int): Image height H.
        img_w (int): Image width W.
        area_range (tuple[float, float]): Range of the erased area over the image area. Defaults to
            (0.02, 0.4).
        aspect_range (tuple[float, float]): Range of the aspect ratio h / w. Defaults to (0.3, 1 / 0.3).
        aspect_sampling (str): 'uniform' (the official code) or 'log-uniform' (mmpretrain). Defaults to
            'uniform'.
        max_attempts (int): Draws before giving up. Defaults to 100.
        rng (np.random.RandomState, optional): Random source. Defaults to None (``np.random``).

    Returns:
        tuple[int, int, int, int] | None: (top, left, h, w), or None when no attempt fits.
    """
    if aspect_sampling not in ASPECT_SAMPLINGS:
        raise ValueError(f'aspect_sampling must be one of {ASPECT_SAMPLINGS}, got {aspect_sampling!r}')
    rng = np.random if rng is None else rng
    lo, hi = aspect_range
    for _ in range(max_attempts):
        area = rng.uniform(*area_range) * img_h * img_w
        if aspect_sampling == 'uniform':
            aspect = rng.uniform(lo, hi)
        else:
            aspect = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        h = int(round(math.sqrt(area * aspect)))
        w = int(round(math.sqrt(area / aspect)))
        if h < img_h and w < img_w:
            return int(rng.randint(0, img_h - h + 1)), int(rng.randint(0, img_w - w + 1)), h, w
    return None


@TRANSFORMS.register_module()
class ReIDRandomErasing(RandomErasing):
    """mmpretrain's RandomErasing with the official re-ID patch draw (:func:`sample_erasing_patch`).

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        aspect_sampling (str): 'uniform' (official) or 'log-uniform'. Defaults to 'uniform'.
        max_attempts (int): Draws until a patch fits inside the image; the image is left unchanged when none
            does. Defaults to 100.
        **kwargs: :class:`mmpretrain.datasets.transforms.RandomErasing` arguments (``erase_prob`` 0.5,
            ``min_area_ratio`` 0.02, ``max_area_ratio`` 0.4, ``aspect_range`` (0.3, 3.33), ``mode``,
            ``fill_color``, ``fill_std``), with the same defaults as the official code.
    """

    def __init__(self, aspect_sampling: str = 'uniform', max_attempts: int = 100, **kwargs) -> None:
        super().__init__(**kwargs)
        if aspect_sampling not in ASPECT_SAMPLINGS:
            raise ValueError(
                f'ReIDRandomErasing: aspect_sampling must be in {ASPECT_SAMPLINGS}, got {aspect_sampling!r}'
            )
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f'ReIDRandomErasing: max_attempts must be an int >= 1, got {max_attempts!r}')
        self.aspect_sampling = aspect_sampling
        self.max_attempts = max_attempts

    @cache_randomness
    def random_patch(self, img_h: int, img_w: int) -> Optional[Tuple[int, int, int, int]]:
        """(top, left, h, w) of the patch, or None when no draw fits."""
        return sample_erasing_patch(
            img_h,
            img_w,
            (self.min_area_ratio, self.max_area_ratio),
            tuple(self.aspect_range),
            self.aspect_sampling,
            self.max_attempts,
        )

    def transform(self, results: dict) -> dict:
        """Erase one patch of ``results['img']`` with probability ``erase_prob``."""
        if self.random_disable():
            return results
        patch = self.random_patch(*results['img'].shape[:2])
        if patch is not None:
            results['img'] = self._fill_pixels(results['img'], *patch)
        return results

    def __repr__(self) -> str:
        return (
            f'{super().__repr__()[:-1]}, aspect_sampling={self.aspect_sampling!r}, '
            f'max_attempts={self.max_attempts})'
        )
