"""Shared pieces of every composited benchmark: long-tail class counts, item rendering, pasting.

A *canvas* is a crop of a real background photo/texture with Fashion-MNIST items pasted on it. Each item's
mask is the set of its (resized) pixels above a small threshold, so masks, boxes and per-pixel labels are
exact by construction. Later pastes occlude earlier ones; a placement is rejected (and retried elsewhere,
then smaller) when it would leave an earlier item with less than ``min_visible`` of its pixels, so every
pixel of an item that can be seen belongs to an annotated instance.
"""

from __future__ import annotations

import colorsys
from typing import List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from .errors import CompositedDataError
from .sources import Background

#: Grey level (0-255, after resizing) above which a Fashion-MNIST pixel belongs to the item.
MASK_THRESHOLD = 24


def long_tail_weights(
    num_classes: int, imbalance_ratio: float, class_order: Optional[Sequence[int]] = None
) -> np.ndarray:
    """Exponential long-tail class probabilities.

    The class at rank ``r`` (0 = head) gets weight ``imbalance_ratio ** (-r / (num_classes - 1))``, so the
    head/tail weight ratio is exactly ``imbalance_ratio``.

    Args:
        num_classes (int): Number of classes K.
        imbalance_ratio (float): Head count / tail count, >= 1 (1 = balanced).
        class_order (Sequence[int], optional): ``class_order[r]`` is the class at rank ``r``; the natural
            order 0..K-1 (head = class 0) when None. Defaults to None.

    Returns:
        np.ndarray: (K,) float64 probabilities indexed by class id, summing to 1.
    """
    if imbalance_ratio < 1:
        raise CompositedDataError(f'imbalance ratio must be >= 1, got {imbalance_ratio}')
    order = np.arange(num_classes) if class_order is None else np.asarray(class_order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(num_classes)):
        raise CompositedDataError(
            f'class order must be a permutation of 0..{num_classes - 1}, got {list(order)}'
        )
    ranks = np.empty(num_classes, dtype=np.float64)
    ranks[order] = np.arange(num_classes)
    weights = float(imbalance_ratio) ** (-ranks / max(num_classes - 1, 1))
    return weights / weights.sum()


def long_tail_counts(
    total: int, num_classes: int, imbalance_ratio: float, class_order: Optional[Sequence[int]] = None
) -> np.ndarray:
    """Integer per-class counts that follow :func:`long_tail_weights` and sum to ``total``.

    Rounding uses the largest-remainder rule, so the result is deterministic and exact in sum.

    Args:
        total (int): Number of instances to distribute.
        num_classes (int): Number of classes K.
        imbalance_ratio (float): Head count / tail count, >= 1.
        class_order (Sequence[int], optional): See :func:`long_tail_weights`. Defaults to None.

    Returns:
        np.ndarray: (K,) int64 counts indexed by class id.
    """
    raw = long_tail_weights(num_classes, imbalance_ratio, class_order) * total
    counts = np.floor(raw).astype(np.int64)
    remainder = raw - counts
    # stable tie-break: larger remainder first, then lower class id
    for k in np.lexsort((np.arange(num_classes), -remainder))[: total - int(counts.sum())]:
        counts[k] += 1
    return counts


def plan_labels(
    rng: np.random.Generator,
    num_images: int,
    objects_per_image: Tuple[int, int],
    num_classes: int,
    imbalance_ratio: float,
    class_order: Optional[Sequence[int]] = None,
) -> List[np.ndarray]:
    """Decide how many items of which class go on every canvas of a split.

    Args:
        rng (np.random.Generator): Split-level random stream.
        num_images (int): Number of canvases.
        objects_per_image (tuple[int, int]): Inclusive (min, max) items per canvas.
        num_classes (int): Number of classes K.
        imbalance_ratio (float): Head/tail ratio of the split's class histogram.
        class_order (Sequence[int], optional): See :func:`long_tail_weights`. Defaults to None.

    Returns:
        list[np.ndarray]: One int64 array of class ids per canvas. The concatenation has exactly the
        :func:`long_tail_counts` histogram, shuffled over canvases.
    """
    lo, hi = objects_per_image
    n_obj = rng.integers(lo, hi + 1, size=num_images)
    counts = long_tail_counts(int(n_obj.sum()), num_classes, imbalance_ratio, class_order)
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), counts)
    rng.shuffle(labels)
    return np.split(labels, np.cumsum(n_obj)[:-1])


def random_tint(rng: np.random.Generator, saturation: Tuple[float, float] = (0.25, 0.9)) -> np.ndarray:
    """A random bright colour.

    Args:
        rng (np.random.Generator): Random stream.
        saturation (tuple[float, float]): Range of HSV saturation. Defaults to (0.25, 0.9).

    Returns:
        np.ndarray: (3,) float32 RGB in [0, 1].
    """
    h = rng.random()
    s = rng.uniform(*saturation)
    v = rng.uniform(0.7, 1.0)
    return np.asarray(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bilinear interpolation when enlarging.

    Args:
        img (np.ndarray): (H, W) or (H, W, C) image.
        width (int): Output width.
        height (int): Output height.

    Returns:
        np.ndarray: (height, width[, C]) image of the same dtype.
    """
    shrink = width * height < img.shape[0] * img.shape[1]
    return cv2.resize(
        img, (int(width), int(height)), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def render_item(
    gray: np.ndarray,
    height: int,
    width: int,
    tint: np.ndarray,
    flip: bool = False,
    threshold: int = MASK_THRESHOLD,
) -> Tuple[np.ndarray, np.ndarray]:
    """Render one Fashion-MNIST item as a tinted RGB patch with its exact mask.

    The grey item is resized (bilinear / area), its pixels above ``threshold`` form the mask, and the RGB
    values are ``tint * (0.3 + 0.7 * grey / 255)`` so the item keeps its real shading.

    Args:
        gray (np.ndarray): (28, 28) uint8 item, bright on black.
        height (int): Patch height in pixels.
        width (int): Patch width in pixels.
        tint (np.ndarray): (3,) RGB colour in [0, 1].
        flip (bool): Mirror horizontally. Defaults to False.
        threshold (int): Mask threshold on the resized grey level. Defaults to :data:`MASK_THRESHOLD`.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``rgb`` (height, width, 3) uint8 and ``mask`` (height, width) bool.
    """
    g = resize(np.ascontiguousarray(gray[:, ::-1] if flip else gray), width, height)
    mask = g > threshold
    shade = 0.3 + 0.7 * (g.astype(np.float32) / 255.0)
    rgb = np.clip(shade[..., None] * (tint * 255.0), 0, 255).astype(np.uint8)
    return rgb, mask


def crop_background(
    background: Background,
    height: int,
    width: int,
    rng: np.random.Generator,
    zoom: Tuple[float, float] = (0.6, 1.6),
    contrast: Tuple[float, float] = (0.55, 0.95),
    tint_textures: bool = True,
) -> np.ndarray:
    """A randomly zoomed, flipped and colour-jittered crop of a background image.

    Args:
        background (Background): Source image.
        height (int): Output height.
        width (int): Output width.
        rng (np.random.Generator): Random stream.
        zoom (tuple[float, float]): Range of magnification relative to fitting the shorter side.
            Defaults to (0.6, 1.6).
        contrast (tuple[float, float]): Range of the contrast factor (pulled towards the mean), which keeps
            items visible on busy photos. Defaults to (0.55, 0.95).
        tint_textures (bool): Colourise grey textures with a random tint. Defaults to True.

    Returns:
        np.ndarray: (height, width, 3) uint8 RGB.
    """
    src = background.image
    sh, sw = src.shape[:2]
    fit = max(height / sh, width / sw)
    scale = fit * rng.uniform(*zoom)
    ch = min(sh, max(1, int(round(height / scale))))
    cw = min(sw, max(1, int(round(width / scale))))
    y0 = int(rng.integers(0, sh - ch + 1))
    x0 = int(rng.integers(0, sw - cw + 1))
    crop = src[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    img = resize(np.ascontiguousarray(crop), width, height).astype(np.float32)
    if background.family == 'texture' and tint_textures:
        img = img * (0.5 + 0.5 * random_tint(rng, (0.1, 0.6)))
    c = rng.uniform(*contrast)
    mean = img.mean(axis=(0, 1), keepdims=True)
    img = (img - mean) * c + mean * rng.uniform(0.7, 1.05)
    return np.clip(img, 0, 255).astype(np.uint8)


class Canvas(NamedTuple):
    """One composited image.

    Attributes:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        id_map (np.ndarray): (H, W) int32; 0 = background, i + 1 = pixel visible from item ``i``.
        labels (np.ndarray): (M,) int64 class id of each placed item, in paste order.
        item_ids (np.ndarray): (M,) int64 Fashion-MNIST index of each placed item.
        background (str): Name of the background source.
        num_dropped (int): Items of the plan that found no valid placement.
    """

    image: np.ndarray
    id_map: np.ndarray
    labels: np.ndarray
    item_ids: np.ndarray
    background: str
    num_dropped: int


def find_placement(
    id_map: np.ndarray,
    mask: np.ndarray,
    visible: np.ndarray,
    full_area: np.ndarray,
    rng: np.random.Generator,
    min_visible: float,
    max_tries: int,
) -> Optional[Tuple[int, int]]:
    """Find a top-left corner where ``mask`` can be pasted without hiding too much of earlier items.

    Args:
        id_map (np.ndarray): (H, W) int32 current visible-item map (0 = background).
        mask (np.ndarray): (h, w) bool mask of the new item, h <= H and w <= W.
        visible (np.ndarray): (M + 1,) visible pixel count of each placed item (index 0 unused).
        full_area (np.ndarray): (M + 1,) unoccluded pixel count of each placed item.
        rng (np.random.Generator): Random stream.
        min_visible (float): Fraction of its pixels every earlier item must keep.
        max_tries (int): Random positions tried.

    Returns:
        tuple[int, int] | None: ``(y, x)`` or None when no try succeeded.
    """
    H, W = id_map.shape
    h, w = mask.shape
    for _ in range(max_tries):
        y = int(rng.integers(0, H - h + 1))
        x = int(rng.integers(0, W - w + 1))
        under = id_map[y : y + h, x : x + w][mask]
        hidden = np.bincount(under, minlength=len(visible))[1:]
        if np.all(visible[1:] - hidden >= min_visible * full_area[1:]):
            return y, x
    return None


def compose_canvas(
    rng: np.random.Generator,
    height: int,
    width: int,
    labels: np.ndarray,
    items: np.ndarray,
    pools: Sequence[np.ndarray],
    backgrounds: Sequence[Background],
    size_range: Tuple[int, int],
    min_visible: float = 0.6,
    max_tries: int = 20,
) -> Canvas:
    """Compose one canvas: background crop plus the planned items, occlusion-checked.

    Args:
        rng (np.random.Generator): Per-canvas random stream.
        height (int): Canvas height.
        width (int): Canvas width.
        labels (np.ndarray): (M,) planned class ids, pasted in this order.
        items (np.ndarray): (N, 28, 28) uint8 Fashion-MNIST images to draw from.
        pools (Sequence[np.ndarray]): Per class, indices into ``items`` of that class.
        backgrounds (Sequence[Background]): Background sources, one picked at random.
        size_range (tuple[int, int]): Inclusive range of the item's longer side in pixels (log-uniform).
        min_visible (float): Fraction of pixels every pasted item keeps visible. Defaults to 0.6.
        max_tries (int): Positions tried per size; the item is then shrunk by 0.8 (twice) before it is
            dropped. Defaults to 20.

    Returns:
        Canvas: The image, visible-item map and what was placed.
    """
    bg = backgrounds[int(rng.integers(len(backgrounds)))]
    image = crop_background(bg, height, width, rng)
    id_map = np.zeros((height, width), dtype=np.int32)
    visible = [0]
    full_area = [0]
    placed_labels, placed_items = [], []
    dropped = 0
    lo, hi = size_range
    for label in labels:
        pool = pools[int(label)]
        item = int(pool[int(rng.integers(len(pool)))])
        size = float(np.exp(rng.uniform(np.log(lo), np.log(hi + 1e-6))))
        aspect = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        tint = random_tint(rng)
        flip = bool(rng.random() < 0.5)
        pos = None
        for shrink in (1.0, 0.8, 0.64):
            s = size * shrink
            ph = int(np.clip(round(s / max(aspect, 1.0)), 8, height))
            pw = int(np.clip(round(s * min(aspect, 1.0)), 8, width))
            rgb, mask = render_item(items[item], ph, pw, tint, flip)
            if mask.sum() < 16:
                continue
            pos = find_placement(
                id_map, mask, np.asarray(visible), np.asarray(full_area), rng, min_visible, max_tries
            )
            if pos is not None:
                break
        if pos is None:
            dropped += 1
            continue
        y, x = pos
        new_id = len(visible)
        region = id_map[y : y + ph, x : x + pw]
        hidden = np.bincount(region[mask], minlength=new_id)
        visible = [v - int(c) for v, c in zip(visible, hidden[:new_id])]
        region[mask] = new_id
        image[y : y + ph, x : x + pw][mask] = rgb[mask]
        visible.append(int(mask.sum()))
        full_area.append(int(mask.sum()))
        placed_labels.append(int(label))
        placed_items.append(item)
    return Canvas(
        image=image,
        id_map=id_map,
        labels=np.asarray(placed_labels, dtype=np.int64),
        item_ids=np.asarray(placed_items, dtype=np.int64),
        background=bg.name,
        num_dropped=dropped,
    )


def child_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream for one part of a benchmark (e.g. split, then image index).

    Args:
        seed (int): The user's seed.
        *keys (int): Integers naming the part; the same keys always give the same stream.

    Returns:
        np.random.Generator: A PCG64 generator seeded from ``(seed, *keys)``.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), *[int(k) for k in keys]]))
