"""Composited two-domain re-ID benchmark in the Market-1501 layout.

An *identity* is one specific Fashion-MNIST item with its own colour. A *camera* is a rendering style:
a background source, a colour cast, a zoom / aspect / blur / noise / resolution setting. Every identity is
seen by 2+ cameras with several jittered crops each (pose = small rotation, shift, scale, flip). Two
domains use different camera styles (``source``: photo backgrounds, mild casts, sharp; ``target``: texture
backgrounds, strong casts, low resolution, blur and noise) and disjoint Fashion-MNIST items, giving a
source -> target adaptation task.

The ``hard`` target domain (:data:`TARGET_DOMAINS`, ``--target-domain hard``) widens the gap between the
domains and takes colour away as an identity cue: the two domains draw their items from disjoint
Fashion-MNIST class groups (``source_classes`` / ``target_classes``: garments vs footwear and bags), and
every identity's colour comes from a small palette (``palette_size`` colours) shared by many identities,
so an identity is the specific item image together with its palette colour. Cameras and poses are as above.

Layout written under ``out``::

    <domain>/bounding_box_train/PPPP_cCs1_FFFFFF_BB.jpg   train identities (Fashion-MNIST train items)
    <domain>/query/...                                   one crop per (test identity, camera)
    <domain>/bounding_box_test/...                       the other test crops + distractors (0000) + junk (-1)
    <domain>/identities.json                             pid -> Fashion-MNIST item, colour, cameras
    meta.json, preview.png

Train and test identities are disjoint (different items and pids); test identities come from the
Fashion-MNIST test split.
"""

from __future__ import annotations

import colorsys
import dataclasses
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from mmssod.datasets.reid import DISTRACTOR_PID, JUNK_PID, MARKET_SUBSETS, format_market_name

from .canvas import child_rng, crop_background, random_tint, render_item
from .errors import CompositedDataError
from .files import META_FILE, makedirs, save_image, start_build, write_json
from .sources import FMNIST_CLASSES, Background, backgrounds_of_family, load_fashion_mnist

GENERATOR = 'composited_reid'
GENERATOR_VERSION = 1
MAX_PID = 9999


@dataclasses.dataclass(frozen=True)
class DomainStyle:
    """How the cameras of one domain render.

    Attributes:
        family (str): Background family, ``'photo'`` or ``'texture'``.
        cast_strength (tuple[float, float]): Range of the camera colour-cast strength.
        blur_sigma (tuple[float, float]): Range of the camera Gaussian blur sigma (pixels).
        noise_std (tuple[float, float]): Range of the camera noise std (grey levels).
        resolution (tuple[float, float]): Range of the capture resolution factor (render small, upscale).
        shade_gamma (float): Gamma applied to the item's shading (1 = as in Fashion-MNIST).
    """

    family: str
    cast_strength: Tuple[float, float]
    blur_sigma: Tuple[float, float]
    noise_std: Tuple[float, float]
    resolution: Tuple[float, float]
    shade_gamma: float


DOMAIN_STYLES: Dict[str, DomainStyle] = {
    'source': DomainStyle('photo', (0.05, 0.2), (0.0, 0.6), (0.0, 3.0), (0.9, 1.0), 1.0),
    'target': DomainStyle('texture', (0.25, 0.5), (0.5, 1.4), (3.0, 9.0), (0.45, 0.75), 0.6),
}
_DOMAIN_KEYS = {'source': 21, 'target': 22}
_PART_CAMERAS, _PART_IDS, _PART_TRAIN, _PART_TEST, _PART_DISTRACT, _PART_JUNK = 1, 2, 3, 4, 5, 6
_PART_PALETTE = 7

#: ``--target-domain`` presets: the :class:`ReIDConfig` fields each sets (``default``: none). ``hard``:
#: source identities are garments (T-shirt/top, Trouser, Pullover, Dress, Coat, Shirt), target identities
#: footwear and bags (Sandal, Sneaker, Bag, Ankle boot), and 4 palette colours are shared by all identities.
TARGET_DOMAINS: Dict[str, Dict[str, Any]] = {
    'default': {},
    'hard': dict(source_classes=(0, 1, 2, 3, 4, 6), target_classes=(5, 7, 8, 9), palette_size=4),
}
#: Where each target domain's benchmark is built by default (its own folder per domain preset).
TARGET_DOMAIN_ROOTS: Dict[str, str] = {
    'default': 'data/composited_reid',
    'hard': 'data/composited_reid_hard',
}


@dataclasses.dataclass(frozen=True)
class ReIDConfig:
    """Sizes of the composited re-ID benchmark (per domain).

    Attributes:
        domains (tuple[str]): Domains to render, keys of :data:`DOMAIN_STYLES`. Defaults to both.
        train_ids (int): Train identities per domain. Defaults to 500.
        test_ids (int): Test identities per domain. Defaults to 500.
        num_cameras (int): Cameras per domain. Defaults to 6.
        cameras_per_id (tuple[int, int]): Inclusive range of cameras that see an identity. Defaults to (2, 4).
        images_per_camera (tuple[int, int]): Inclusive range of crops per (identity, camera); at least 2 so
            that every query camera keeps a gallery crop. Defaults to (2, 4).
        height (int): Crop height. Defaults to 128.
        width (int): Crop width. Defaults to 64.
        num_distractors (int): Gallery distractors (pid 0000) per domain. Defaults to 200.
        num_junk (int): Gallery junk crops (pid -1) per domain. Defaults to 100.
        source_classes (tuple[int]): Fashion-MNIST classes the ``source`` identities (and distractor items)
            come from; empty = any class. Set together with ``target_classes``, disjoint from it.
            Defaults to ().
        target_classes (tuple[int]): The same for the ``target`` domain. Defaults to ().
        palette_size (int): 0 = every identity has its own random colour; k > 0 = every identity's colour is
            one of k fixed palette colours, each shared by about ``ids / k`` identities of a domain and part.
            Defaults to 0.
    """

    domains: Tuple[str, ...] = ('source', 'target')
    train_ids: int = 500
    test_ids: int = 500
    num_cameras: int = 6
    cameras_per_id: Tuple[int, int] = (2, 4)
    images_per_camera: Tuple[int, int] = (2, 4)
    height: int = 128
    width: int = 64
    num_distractors: int = 200
    num_junk: int = 100
    source_classes: Tuple[int, ...] = ()
    target_classes: Tuple[int, ...] = ()
    palette_size: int = 0

    @classmethod
    def for_target_domain(cls, target_domain: str, **kwargs: Any) -> ReIDConfig:
        """A config with the fields of a :data:`TARGET_DOMAINS` preset (``kwargs`` override sizes).

        Args:
            target_domain (str): Preset name, ``'default'`` or ``'hard'``.
            **kwargs: Other :class:`ReIDConfig` fields.

        Returns:
            ReIDConfig: The config.
        """
        if target_domain not in TARGET_DOMAINS:
            raise CompositedDataError(
                f'target domain must be one of {sorted(TARGET_DOMAINS)}, got {target_domain!r}'
            )
        return cls(**{**TARGET_DOMAINS[target_domain], **kwargs})

    def domain_classes(self, domain: str) -> Tuple[int, ...]:
        """The Fashion-MNIST classes a domain's items come from (empty = any class).

        Args:
            domain (str): ``'source'`` or ``'target'``.

        Returns:
            tuple[int]: Class ids.
        """
        return self.source_classes if domain == 'source' else self.target_classes

    def validate(self, num_train_items: int = 60000, num_test_items: int = 10000) -> None:
        """Raise :class:`CompositedDataError` for impossible sizes.

        Args:
            num_train_items (int): Fashion-MNIST train items available. Defaults to 60000.
            num_test_items (int): Fashion-MNIST test items available. Defaults to 10000.
        """
        unknown = [d for d in self.domains if d not in DOMAIN_STYLES]
        if unknown or not self.domains or len(set(self.domains)) != len(self.domains):
            raise CompositedDataError(
                f'domains must be distinct names from {sorted(DOMAIN_STYLES)}, got {self.domains}'
            )
        if self.train_ids < 1 or self.test_ids < 1:
            raise CompositedDataError(
                f'need >= 1 train and test identity, got {self.train_ids}/{self.test_ids}'
            )
        if self.train_ids + self.test_ids > MAX_PID:
            raise CompositedDataError(
                f'{self.train_ids} train + {self.test_ids} test identities exceed the {MAX_PID} four-digit '
                'Market-1501 person ids of one domain'
            )
        n = len(self.domains)
        if n * self.train_ids > num_train_items:
            raise CompositedDataError(
                f'{n} domains x {self.train_ids} train identities need more Fashion-MNIST train items than '
                f'the {num_train_items} available (one item per identity)'
            )
        if n * self.test_ids > num_test_items:
            raise CompositedDataError(
                f'{n} domains x {self.test_ids} test identities need more Fashion-MNIST test items than the '
                f'{num_test_items} available (one item per identity)'
            )
        lo, hi = self.cameras_per_id
        if self.num_cameras < 2 or not 2 <= lo <= hi <= self.num_cameras:
            raise CompositedDataError(
                f'need >= 2 cameras and 2 <= cameras per identity <= {self.num_cameras}, got '
                f'{self.num_cameras} cameras and {lo}..{hi} per identity'
            )
        if self.num_cameras > 99:
            raise CompositedDataError(f'at most 99 cameras, got {self.num_cameras}')
        plo, phi = self.images_per_camera
        if not 2 <= plo <= phi:
            raise CompositedDataError(f'images per camera must satisfy 2 <= min <= max, got {plo}..{phi}')
        if self.height < 16 or self.width < 16:
            raise CompositedDataError(f'crops must be at least 16x16, got {self.width}x{self.height}')
        if self.num_distractors < 0 or self.num_junk < 0:
            raise CompositedDataError('numbers of distractors and junk crops must be >= 0')
        src, tgt = set(self.source_classes), set(self.target_classes)
        num_classes = len(FMNIST_CLASSES)
        for name, group in (('source_classes', self.source_classes), ('target_classes', self.target_classes)):
            if len(set(group)) != len(group) or not all(0 <= c < num_classes for c in group):
                raise CompositedDataError(
                    f'{name} must be distinct Fashion-MNIST class ids in 0..{num_classes - 1}, got {group}'
                )
        if bool(src) != bool(tgt) or src & tgt:
            raise CompositedDataError(
                'source_classes and target_classes must both be empty (items of any class) or both set and '
                f'disjoint (so that the domains never share an item), got {self.source_classes} and '
                f'{self.target_classes}'
            )
        if not 0 <= self.palette_size <= 64:
            raise CompositedDataError(
                'palette_size must be 0 (a colour per identity) or 1..64 shared colours, got '
                f'{self.palette_size}'
            )

    def validate_classes(self, train_labels: np.ndarray, test_labels: np.ndarray) -> None:
        """Raise :class:`CompositedDataError` when a domain's classes hold too few items.

        Args:
            train_labels (np.ndarray): (60000,) Fashion-MNIST train labels.
            test_labels (np.ndarray): (10000,) Fashion-MNIST test labels.
        """
        for domain in self.domains:
            classes = self.domain_classes(domain)
            if not classes:
                continue
            for split, labels, need in (
                ('train', train_labels, self.train_ids),
                ('test', test_labels, self.test_ids),
            ):
                have = int(np.isin(labels, classes).sum())
                if need > have:
                    raise CompositedDataError(
                        f'{domain} domain: {need} {split} identities need more Fashion-MNIST {split} items '
                        f'of classes {list(classes)} than the {have} available (one item per identity)'
                    )

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly parameters.

        Returns:
            dict: Field name -> value.
        """
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        # the target-domain preset fields appear only when set: a default build's meta.json keeps its keys
        for key in ('source_classes', 'target_classes', 'palette_size'):
            if not params[key]:
                del params[key]
        return params


@dataclasses.dataclass(frozen=True)
class Camera:
    """One camera of a domain.

    Attributes:
        background (Background): Background source.
        cast (np.ndarray): (3,) per-channel gain of the colour cast.
        brightness (float): Global gain.
        blur_sigma (float): Gaussian blur sigma (0 = none).
        noise_std (float): Gaussian noise std in grey levels.
        resolution (float): Capture resolution factor in (0, 1].
        zoom (float): Item height / crop height.
        aspect (float): Item width / crop width.
    """

    background: Background
    cast: np.ndarray
    brightness: float
    blur_sigma: float
    noise_std: float
    resolution: float
    zoom: float
    aspect: float


def make_cameras(style: DomainStyle, num: int, rng: np.random.Generator) -> List[Camera]:
    """Draw the cameras of a domain.

    Args:
        style (DomainStyle): Domain rendering style.
        num (int): Number of cameras.
        rng (np.random.Generator): Domain camera stream.

    Returns:
        list[Camera]: Cameras; backgrounds cycle through the family in a seeded order.
    """
    family = backgrounds_of_family(style.family)
    order = rng.permutation(len(family))
    cams = []
    for c in range(num):
        tint = random_tint(rng, (0.3, 1.0))
        strength = rng.uniform(*style.cast_strength)
        cams.append(
            Camera(
                background=family[int(order[c % len(family)])],
                cast=(1.0 - strength) + strength * tint / max(float(tint.mean()), 1e-3),
                brightness=float(rng.uniform(0.8, 1.15)),
                blur_sigma=float(rng.uniform(*style.blur_sigma)),
                noise_std=float(rng.uniform(*style.noise_std)),
                resolution=float(rng.uniform(*style.resolution)),
                zoom=float(rng.uniform(0.6, 0.9)),
                aspect=float(rng.uniform(0.7, 0.95)),
            )
        )
    return cams


def palette_colours(k: int) -> np.ndarray:
    """The k shared identity colours of a palette build: evenly spaced hues, one saturation and value.

    Args:
        k (int): Palette size, >= 1.

    Returns:
        np.ndarray: (k, 3) float32 RGB in [0, 1]; the same k always gives the same colours.
    """
    return np.asarray(
        [colorsys.hsv_to_rgb((0.02 + i / k) % 1.0, 0.75, 0.9) for i in range(k)], dtype=np.float32
    )


def domain_items(perm: np.ndarray, labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """The items a class-restricted domain draws from, in the order of the shared permutation.

    Args:
        perm (np.ndarray): (N,) permutation of the Fashion-MNIST split's item indices.
        labels (np.ndarray): (N,) class of every item of the split.
        classes (Sequence[int]): The domain's classes.

    Returns:
        np.ndarray: (M,) item indices of ``perm`` whose class is in ``classes``, in ``perm`` order.
    """
    return perm[np.isin(labels[perm], np.asarray(classes, dtype=np.int64))]


def palette_assignment(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Palette colour of each of n identities: every colour used by ``n // k`` or ``n // k + 1`` of them.

    Args:
        n (int): Number of identities.
        k (int): Palette size.
        rng (np.random.Generator): Random stream (which identities share a colour).

    Returns:
        np.ndarray: (n,) int64 palette indices in [0, k).
    """
    return (rng.permutation(n) % k).astype(np.int64)


def render_crop(
    gray: np.ndarray,
    color: np.ndarray,
    cam: Camera,
    style: DomainStyle,
    height: int,
    width: int,
    rng: np.random.Generator,
    truncate: bool = False,
) -> np.ndarray:
    """Render one re-ID crop of an item seen by a camera.

    Args:
        gray (np.ndarray | None): (28, 28) uint8 item, or None for a background-only crop.
        color (np.ndarray): (3,) identity colour in [0, 1].
        cam (Camera): The camera.
        style (DomainStyle): Domain style (item shading gamma).
        height (int): Crop height.
        width (int): Crop width.
        rng (np.random.Generator): Per-crop stream (pose jitter, background window, noise).
        truncate (bool): Push the item mostly out of the frame (a junk crop). Defaults to False.

    Returns:
        np.ndarray: (height, width, 3) uint8 RGB.
    """
    img = crop_background(
        cam.background, height, width, rng, zoom=(0.8, 2.0), contrast=(0.5, 0.8), tint_textures=False
    )
    if gray is not None:
        g = gray[:, ::-1] if rng.random() < 0.5 else gray
        angle = rng.uniform(-8, 8)
        rot = cv2.getRotationMatrix2D((13.5, 13.5), angle, 1.0)
        g = cv2.warpAffine(np.ascontiguousarray(g), rot, (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)
        if style.shade_gamma != 1.0:
            g = (255.0 * (g / 255.0) ** style.shade_gamma).astype(np.uint8)
        ih = int(np.clip(round(height * cam.zoom * rng.uniform(0.92, 1.05)), 8, height))
        iw = int(np.clip(round(width * cam.aspect * rng.uniform(0.92, 1.05)), 8, width))
        rgb, mask = render_item(g, ih, iw, color)
        cy = (height - ih) / 2 + rng.uniform(-0.08, 0.08) * height
        cx = (width - iw) / 2 + rng.uniform(-0.08, 0.08) * width
        if truncate:
            cy += rng.choice([-1, 1]) * ih * rng.uniform(0.55, 0.75)
        y0, x0 = int(round(cy)), int(round(cx))
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(height, y0 + ih), min(width, x0 + iw)
        if ye > ys and xe > xs:
            sub_m = mask[ys - y0 : ye - y0, xs - x0 : xe - x0]
            img[ys:ye, xs:xe][sub_m] = rgb[ys - y0 : ye - y0, xs - x0 : xe - x0][sub_m]
    x = img.astype(np.float32) * cam.cast * cam.brightness
    if cam.resolution < 1.0:
        small = cv2.resize(
            x,
            (max(4, int(width * cam.resolution)), max(4, int(height * cam.resolution))),
            interpolation=cv2.INTER_AREA,
        )
        x = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if cam.blur_sigma > 0.05:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=cam.blur_sigma)
    if cam.noise_std > 0:
        x = x + rng.normal(0.0, cam.noise_std, size=x.shape).astype(np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def build_domain(
    cfg: ReIDConfig,
    seed: int,
    domain: str,
    domain_index: int,
    out: str,
    fmnist_root: Optional[str] = None,
    progress: bool = False,
) -> Dict[str, Any]:
    """Render one domain into ``out/<domain>``.

    Args:
        cfg (ReIDConfig): Sizes.
        seed (int): Generation seed.
        domain (str): Domain name (key of :data:`DOMAIN_STYLES`).
        domain_index (int): Position of the domain in ``cfg.domains``; selects its disjoint item chunk.
        out (str): Benchmark folder.
        fmnist_root (str, optional): Fashion-MNIST folder. Defaults to None.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        dict: Counts per subset and the identity table written to ``identities.json``.
    """
    style = DOMAIN_STYLES[domain]
    dkey = _DOMAIN_KEYS[domain]
    cams = make_cameras(style, cfg.num_cameras, child_rng(seed, dkey, _PART_CAMERAS))
    root = osp.join(out, domain)
    folders = {s: osp.join(root, f) for s, f in MARKET_SUBSETS.items()}
    makedirs(*folders.values())
    # items: one shared permutation per Fashion-MNIST split, each domain takes its own chunk (disjoint)
    train_items, train_labels = load_fashion_mnist(fmnist_root, 'train')
    test_items, test_labels = load_fashion_mnist(fmnist_root, 'test')
    train_perm = child_rng(seed, 20, 1).permutation(len(train_items))
    test_perm = child_rng(seed, 20, 2).permutation(len(test_items))
    n_dom = len(cfg.domains)
    classes = cfg.domain_classes(domain)
    if classes:
        # class-restricted domains: the first items of the shared permutation that have the domain's classes
        # (the class groups are disjoint, so the domains never share an item)
        train_chunk = domain_items(train_perm, train_labels, classes)[: cfg.train_ids]
        test_pool = domain_items(test_perm, test_labels, classes)
        test_chunk, spare = test_pool[: cfg.test_ids], test_pool[cfg.test_ids :]
    else:
        train_chunk = train_perm[domain_index * cfg.train_ids : (domain_index + 1) * cfg.train_ids]
        test_chunk = test_perm[domain_index * cfg.test_ids : (domain_index + 1) * cfg.test_ids]
        spare = test_perm[n_dom * cfg.test_ids :]
    palette = palette_colours(cfg.palette_size) if cfg.palette_size else None
    ids_rng = child_rng(seed, dkey, _PART_IDS)
    pids = ids_rng.permutation(np.arange(1, MAX_PID + 1))[: cfg.train_ids + cfg.test_ids]
    identities = []
    for part, n, chunk, fm_split, labels in (
        ('train', cfg.train_ids, train_chunk, 'train', train_labels),
        ('test', cfg.test_ids, test_chunk, 'test', test_labels),
    ):
        offset = 0 if part == 'train' else cfg.train_ids
        shades = None
        if palette is not None:
            shades = palette_assignment(n, len(palette), child_rng(seed, dkey, _PART_PALETTE, offset))
        for j in range(n):
            ident = {
                'pid': int(pids[offset + j]),
                'part': part,
                'fmnist_split': fm_split,
                'fmnist_index': int(chunk[j]),
            }
            if shades is None:
                ident['color'] = [round(float(v), 4) for v in random_tint(ids_rng)]
            else:
                ident['color'] = [round(float(v), 4) for v in palette[shades[j]]]
                ident['palette_index'] = int(shades[j])
            if classes:
                ident['fmnist_class'] = int(labels[chunk[j]])
            identities.append(ident)
    jobs = []  # (subset, pid, camid, item array or None, color, truncate, key)
    frames = [0] * cfg.num_cameras
    for ident in identities:
        is_train = ident['part'] == 'train'
        rng = child_rng(seed, dkey, _PART_TRAIN if is_train else _PART_TEST, ident['pid'])
        k = int(rng.integers(cfg.cameras_per_id[0], cfg.cameras_per_id[1] + 1))
        cam_ids = np.sort(rng.choice(cfg.num_cameras, size=k, replace=False))
        ident['cameras'] = [int(c) for c in cam_ids]
        items = train_items if is_train else test_items
        for c in cam_ids:
            n_img = int(rng.integers(cfg.images_per_camera[0], cfg.images_per_camera[1] + 1))
            for t in range(n_img):
                subset = 'train' if is_train else ('query' if t == 0 else 'gallery')
                jobs.append(
                    (subset, ident['pid'], int(c), items[ident['fmnist_index']], ident['color'], False, t)
                )
    extra_rng = child_rng(seed, dkey, _PART_DISTRACT)
    for d in range(cfg.num_distractors):
        c = int(extra_rng.integers(cfg.num_cameras))
        # half show an item no identity uses (when any is left), half are background only
        use_item = len(spare) > 0 and d % 2 == 0
        item = test_items[int(spare[(d // 2) % len(spare)])] if use_item else None
        if palette is None:
            colour = random_tint(extra_rng)
        else:
            colour = palette[int(extra_rng.integers(len(palette)))]
        jobs.append(('gallery', DISTRACTOR_PID, c, item, [round(float(v), 4) for v in colour], False, d))
    junk_rng = child_rng(seed, dkey, _PART_JUNK)
    test_idents = [i for i in identities if i['part'] == 'test']
    for d in range(cfg.num_junk):
        ident = test_idents[int(junk_rng.integers(len(test_idents)))]
        c = int(junk_rng.integers(cfg.num_cameras))
        jobs.append(('gallery', JUNK_PID, c, test_items[ident['fmnist_index']], ident['color'], True, d))
    counts = {s: 0 for s in MARKET_SUBSETS}
    for n, (subset, pid, c, item, color, truncate, t) in enumerate(
        tqdm(jobs, desc=f'reid {domain}', unit='img', disable=not progress)
    ):
        rng = child_rng(seed, dkey, 100, n)
        crop = render_crop(
            item, np.asarray(color, dtype=np.float32), cams[c], style, cfg.height, cfg.width, rng, truncate
        )
        frames[c] += 1
        name = format_market_name(pid, c, seq=1, frame=frames[c], box=t % 100)
        save_image(osp.join(folders[subset], name), crop)
        counts[subset] += 1
    table = {
        'domain': domain,
        'style': dataclasses.asdict(style),
        **({'classes': list(classes)} if classes else {}),
        **({'palette': [[round(float(v), 4) for v in p] for p in palette]} if palette is not None else {}),
        'cameras': [
            {
                'camid': c,
                'background': cam.background.name,
                'blur_sigma': round(cam.blur_sigma, 3),
                'noise_std': round(cam.noise_std, 3),
                'resolution': round(cam.resolution, 3),
            }
            for c, cam in enumerate(cams)
        ],
        'identities': identities,
    }
    write_json(osp.join(root, 'identities.json'), table)
    return {
        'images': counts,
        'train_ids': cfg.train_ids,
        'test_ids': cfg.test_ids,
        'distractors': cfg.num_distractors,
        'junk': cfg.num_junk,
    }


def build_reid(
    out: str,
    seed: int = 0,
    cfg: Optional[ReIDConfig] = None,
    fmnist_root: Optional[str] = None,
    progress: bool = False,
    preview: bool = False,
) -> Dict[str, Any]:
    """Build the two-domain re-ID benchmark into ``out``.

    Args:
        out (str): Output folder (created; a previous build by this tool is replaced).
        seed (int): Generation seed. Defaults to 0.
        cfg (ReIDConfig, optional): Sizes. Defaults to None, meaning ``ReIDConfig()``.
        fmnist_root (str, optional): Fashion-MNIST folder. Defaults to None.
        progress (bool): Show progress bars. Defaults to False.
        preview (bool): Also write ``preview.png``. Defaults to False.

    Returns:
        dict: The content of ``meta.json``.
    """
    cfg = cfg or ReIDConfig()
    train_items, train_labels = load_fashion_mnist(fmnist_root, 'train')
    test_items, test_labels = load_fashion_mnist(fmnist_root, 'test')
    cfg.validate(len(train_items), len(test_items))
    cfg.validate_classes(train_labels, test_labels)
    out, meta = start_build(
        out, GENERATOR, GENERATOR_VERSION, tuple(DOMAIN_STYLES) + ('preview.png',), seed, cfg.to_dict()
    )
    meta['domains'] = {
        d: build_domain(cfg, seed, d, i, out, fmnist_root, progress) for i, d in enumerate(cfg.domains)
    }
    meta['complete'] = True
    write_json(osp.join(out, META_FILE), meta)
    if preview:
        from .preview import preview_reid

        preview_reid(out)
    return meta


def domain_folders(out: str, domains: Sequence[str] = ('source', 'target')) -> Dict[str, str]:
    """Data roots of the domains of a build (what ``MarketReIDDataset(data_root=...)`` takes).

    Args:
        out (str): Benchmark folder.
        domains (Sequence[str]): Domain names. Defaults to ('source', 'target').

    Returns:
        dict[str, str]: Domain -> folder.
    """
    return {d: osp.join(out, d) for d in domains}
