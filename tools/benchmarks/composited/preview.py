"""PNG contact sheets of generated samples, so a person can look at what was made."""

from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .files import PROVENANCE, load_image
from .sources import FMNIST_CLASSES

#: One fixed colour per class (index = class id; entry 0 of the segmentation palette is background).
CLASS_COLORS: Tuple[Tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 190),
)


def _font(size: int = 11) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _tile(img: np.ndarray, tile: int) -> Image.Image:
    pil = Image.fromarray(img)
    scale = tile / max(pil.size)
    return pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.NEAREST)


def draw_len(text: str, size: int = 11) -> float:
    """Width in pixels of ``text`` in the preview font.

    Args:
        text (str): Text.
        size (int): Font size. Defaults to 11.

    Returns:
        float: Rendered width.
    """
    return ImageDraw.Draw(Image.new('RGB', (1, 1))).textlength(text, font=_font(size))


def make_grid(tiles: Sequence[Image.Image], captions: Sequence[str], cols: int, title: str) -> Image.Image:
    """Arrange tiles in a grid with a caption under each and a title on top.

    Args:
        tiles (Sequence[PIL.Image.Image]): Tiles (any sizes; each cell is as large as the largest).
        captions (Sequence[str]): One caption per tile.
        cols (int): Number of columns.
        title (str): Text at the top of the sheet.

    Returns:
        PIL.Image.Image: The sheet (RGB).
    """
    font = _font()
    cw = max(max(t.width for t in tiles), max((int(draw_len(c)) for c in captions), default=0)) + 6
    ch = max(t.height for t in tiles) + 18
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new('RGB', (max(cols * cw, int(draw_len(title)) + 8), rows * ch + 20), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 3), title, fill=(0, 0, 0), font=font)
    for i, (tile, cap) in enumerate(zip(tiles, captions)):
        x, y = (i % cols) * cw + 3, (i // cols) * ch + 20
        sheet.paste(tile.convert('RGB'), (x, y))
        draw.text((x, y + tile.height + 2), cap, fill=(0, 0, 0), font=font)
    return sheet


def draw_instances(image: np.ndarray, anns: Sequence[Dict], tile: int = 256) -> Image.Image:
    """Overlay COCO masks (40% alpha), boxes and class names on an image.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        anns (Sequence[dict]): COCO annotations with RLE ``segmentation`` and xywh ``bbox``.
        tile (int): Size of the longer side of the returned tile. Defaults to 256.

    Returns:
        PIL.Image.Image: The annotated tile.
    """
    from pycocotools import mask as mask_utils

    out = image.astype(np.float32)
    for ann in anns:
        color = np.asarray(CLASS_COLORS[(ann['category_id'] - 1) % len(CLASS_COLORS)], dtype=np.float32)
        m = mask_utils.decode(ann['segmentation']).astype(bool)
        out[m] = 0.6 * out[m] + 0.4 * color
    pil = _tile(out.astype(np.uint8), tile)
    s = pil.width / image.shape[1]
    draw = ImageDraw.Draw(pil)
    font = _font(10)
    for ann in anns:
        x, y, w, h = (v * s for v in ann['bbox'])
        color = CLASS_COLORS[(ann['category_id'] - 1) % len(CLASS_COLORS)]
        draw.rectangle([x, y, x + w, y + h], outline=color, width=2)
        draw.text((x + 2, y + 1), FMNIST_CLASSES[ann['category_id'] - 1], fill=color, font=font)
    return pil


def preview_detection(out: str, per_split: int = 6, path: Optional[str] = None) -> str:
    """Contact sheet of a detection build: train, val and corrupted val with masks, boxes and names.

    Args:
        out (str): Folder written by :func:`~tools.benchmarks.composited.detection.build_detection`.
        per_split (int): Images shown per split. Defaults to 6.
        path (str, optional): Output PNG. Defaults to ``<out>/preview.png``.

    Returns:
        str: The written path.
    """
    tiles, caps = [], []
    for split in ('train', 'val', 'val_corrupted'):
        ann_file = osp.join(out, 'annotations', f'instances_{split}.json')
        if not osp.isfile(ann_file):
            continue
        with open(ann_file) as f:
            coco = json.load(f)
        by_image: Dict[int, List[Dict]] = {}
        for ann in coco['annotations']:
            by_image.setdefault(ann['image_id'], []).append(ann)
        for img in coco['images'][:per_split]:
            anns = by_image.get(img['id'], [])
            tiles.append(draw_instances(load_image(osp.join(out, split, img['file_name'])), anns))
            extra = f" {img['corruption']}@{img['severity']}" if 'corruption' in img else ''
            caps.append(f"{split}/{img['file_name']} n={len(anns)}{extra}")
    path = path or osp.join(out, 'preview.png')
    title = (
        f'{osp.basename(osp.normpath(out))}: {PROVENANCE} (Fashion-MNIST items on scikit-image backgrounds)'
    )
    make_grid(tiles, caps, per_split, title).save(path)
    return path


def colorize_seg(seg: np.ndarray) -> np.ndarray:
    """Colour a label map: 0 = black background, k + 1 = class k colour, 255 = white (ignore).

    Args:
        seg (np.ndarray): (H, W) uint8 label map.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1 : len(CLASS_COLORS) + 1] = CLASS_COLORS
    palette[255] = 255
    return palette[seg]


def preview_segmentation(out: str, count: int = 6, path: Optional[str] = None) -> str:
    """Contact sheet of a segmentation build: image / label-map pairs plus unlabeled samples.

    Args:
        out (str): Folder written by :func:`~tools.benchmarks.composited.segmentation.build_segmentation`.
        count (int): Pairs shown per labeled split. Defaults to 6.
        path (str, optional): Output PNG. Defaults to ``<out>/preview.png``.

    Returns:
        str: The written path.
    """
    tiles, caps = [], []
    for split in ('train', 'val'):
        names = sorted(os.listdir(osp.join(out, 'img_dir', split)))[:count]
        for name in names:
            seg = load_image(osp.join(out, 'ann_dir', split, name))
            tiles.append(_tile(load_image(osp.join(out, 'img_dir', split, name)), 160))
            caps.append(f'{split}/{name}')
            tiles.append(_tile(colorize_seg(seg), 160))
            present = ','.join(str(v) for v in np.unique(seg) if v not in (0, 255))
            caps.append(f'classes {present}')
    unl = osp.join(out, 'img_dir', 'unlabeled')
    if osp.isdir(unl):
        for name in sorted(os.listdir(unl))[:count]:
            tiles.append(_tile(load_image(osp.join(unl, name)), 160))
            caps.append(f'unlabeled/{name}')
    path = path or osp.join(out, 'preview.png')
    legend = ' '.join(f'{k + 1}={n}' for k, n in enumerate(FMNIST_CLASSES))
    make_grid(tiles, caps, 6, f'{PROVENANCE}; 0=background, 255=ignore; {legend}').save(path)
    return path


def preview_reid(out: str, identities: int = 6, per_identity: int = 8, path: Optional[str] = None) -> str:
    """Contact sheet of a re-ID build: one row per identity, its crops across cameras, per domain.

    Args:
        out (str): Folder written by :func:`~tools.benchmarks.composited.reid.build_reid`.
        identities (int): Identities shown per domain. Defaults to 6.
        per_identity (int): Crops shown per identity. Defaults to 8.
        path (str, optional): Output PNG. Defaults to ``<out>/preview.png``.

    Returns:
        str: The written path.
    """
    from mmssod.datasets.reid import parse_market_name

    tiles, caps = [], []
    for domain in sorted(d for d in os.listdir(out) if osp.isdir(osp.join(out, d, 'bounding_box_train'))):
        folder = osp.join(out, domain, 'bounding_box_train')
        by_pid: Dict[int, List[Tuple[int, str]]] = {}
        for name in sorted(os.listdir(folder)):
            pid, cam = parse_market_name(name)
            by_pid.setdefault(pid, []).append((cam, name))
        for pid in sorted(by_pid)[:identities]:
            crops = sorted(by_pid[pid])
            # spread the shown crops over cameras
            step = max(1, len(crops) // per_identity)
            for cam, name in (crops[::step] + crops)[:per_identity]:
                tiles.append(_tile(load_image(osp.join(folder, name)), 96))
                caps.append(f'{domain[0]} {pid:04d} c{cam + 1}')
    path = path or osp.join(out, 'preview.png')
    make_grid(
        tiles,
        caps,
        per_identity,
        f'{PROVENANCE}: re-ID, one row per identity; caption = domain (s/t), pid, camera',
    ).save(path)
    return path
