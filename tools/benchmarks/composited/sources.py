"""Real pixels that install offline: Fashion-MNIST items and scikit-image backgrounds.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist`` (IDX files, read here with
gzip + numpy). Backgrounds are the photos and textures bundled inside the scikit-image wheel, read straight
from its ``skimage/data`` folder so that nothing ever triggers a download.
"""

from __future__ import annotations

import functools
import gzip
import os
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .errors import CompositedDataError

#: Fashion-MNIST class names, index = label in the IDX files. COCO category id = index + 1.
FMNIST_CLASSES: Tuple[str, ...] = (
    'T-shirt/top',
    'Trouser',
    'Pullover',
    'Dress',
    'Coat',
    'Sandal',
    'Shirt',
    'Sneaker',
    'Bag',
    'Ankle boot',
)

DEFAULT_FMNIST_ROOT = '/usr/share/datasets/fashion-mnist'
FMNIST_ENV_VAR = 'MMSSOD_FMNIST_ROOT'
_IDX_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049

#: The text every error about a missing Fashion-MNIST repeats.
FMNIST_INSTALL_HINT = (
    'Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, as root; files go to '
    f'{DEFAULT_FMNIST_ROOT}), or point `--fmnist-root` (or the environment variable {FMNIST_ENV_VAR}) at a '
    'folder holding the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, '
    't10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz).'
)


def resolve_fmnist_root(root: Optional[str] = None) -> str:
    """Pick the Fashion-MNIST folder: explicit argument, then ``$MMSSOD_FMNIST_ROOT``, then the default.

    Args:
        root (str, optional): Folder given by the user. Defaults to None.

    Returns:
        str: The folder to read the IDX files from (not yet checked).
    """
    if root:
        return root
    return os.environ.get(FMNIST_ENV_VAR) or DEFAULT_FMNIST_ROOT


def _find_idx(root: str, stem: str) -> str:
    for name in (stem + '.gz', stem):
        path = osp.join(root, name)
        if osp.isfile(path):
            return path
    raise CompositedDataError(f'Fashion-MNIST not found: no {stem}(.gz) in {root!r}. {FMNIST_INSTALL_HINT}')


def _read_idx(path: str, magic: int, ndim: int) -> np.ndarray:
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise CompositedDataError(
            f'Cannot read Fashion-MNIST file {path}: {err}. {FMNIST_INSTALL_HINT}'
        ) from err
    n_header = 4 * (ndim + 1)
    header = np.frombuffer(data[:n_header], dtype='>u4') if len(data) >= n_header else np.zeros(0, '>u4')
    if len(header) != ndim + 1 or int(header[0]) != magic:
        raise CompositedDataError(f'{path} is not an IDX file of the expected kind (magic {magic}).')
    shape = tuple(int(v) for v in header[1:])
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 * (ndim + 1))
    if payload.size != int(np.prod(shape)):
        raise CompositedDataError(
            f'{path} is truncated: expected {int(np.prod(shape))} values, got {payload.size}.'
        )
    return payload.reshape(shape)


@functools.lru_cache(maxsize=4)
def load_fashion_mnist(root: Optional[str] = None, split: str = 'train') -> Tuple[np.ndarray, np.ndarray]:
    """Read one Fashion-MNIST split from IDX files.

    Args:
        root (str, optional): Folder with the IDX files; see :func:`resolve_fmnist_root`. Defaults to None.
        split (str): ``'train'`` (60,000 items) or ``'test'`` (10,000 items, the t10k files).
            Defaults to 'train'.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``images`` (N, 28, 28) uint8, bright item on black, and ``labels``
        (N,) int64 in [0, 10). The arrays are read-only (they are cached).
    """
    if split not in _IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = resolve_fmnist_root(root)
    if not osp.isdir(root):
        raise CompositedDataError(f'Fashion-MNIST not found: {root!r} is not a folder. {FMNIST_INSTALL_HINT}')
    img_stem, lbl_stem = _IDX_FILES[split]
    images = _read_idx(_find_idx(root, img_stem), _IMAGES_MAGIC, 3)
    labels = _read_idx(_find_idx(root, lbl_stem), _LABELS_MAGIC, 1).astype(np.int64)
    if len(images) != len(labels):
        raise CompositedDataError(f'Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels.')
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def class_pools(labels: np.ndarray, num_classes: int = len(FMNIST_CLASSES)) -> List[np.ndarray]:
    """Indices of the items of each class.

    Args:
        labels (np.ndarray): (N,) class index per item.
        num_classes (int): Number of classes. Defaults to 10.

    Returns:
        list[np.ndarray]: ``num_classes`` arrays of item indices, ascending.
    """
    return [np.flatnonzero(labels == k) for k in range(num_classes)]


class Background(NamedTuple):
    """One background source image.

    Attributes:
        name (str): scikit-image name of the image.
        family (str): ``'photo'`` (colour photograph) or ``'texture'`` (grey texture / scan).
        image (np.ndarray): (H, W, 3) uint8 RGB pixels.
    """

    name: str
    family: str
    image: np.ndarray


#: Bundled scikit-image files used as backgrounds: name -> (file in skimage/data, family). Only files that
#: ship inside the wheel are listed; images that scikit-image downloads on demand are never used.
BACKGROUND_FILES: Dict[str, Tuple[str, str]] = {
    'astronaut': ('astronaut.png', 'photo'),
    'chelsea': ('chelsea.png', 'photo'),
    'coffee': ('coffee.png', 'photo'),
    'rocket': ('rocket.jpg', 'photo'),
    'hubble_deep_field': ('hubble_deep_field.jpg', 'photo'),
    'immunohistochemistry': ('ihc.png', 'photo'),
    'retina': ('retina.jpg', 'photo'),
    'motorcycle': ('motorcycle_left.png', 'photo'),
    'brick': ('brick.png', 'texture'),
    'grass': ('grass.png', 'texture'),
    'gravel': ('gravel.png', 'texture'),
    'moon': ('moon.png', 'texture'),
    'camera': ('camera.png', 'texture'),
    'coins': ('coins.png', 'texture'),
    'page': ('page.png', 'texture'),
    'text': ('text.png', 'texture'),
    'clock': ('clock_motion.png', 'texture'),
    'cell': ('cell.png', 'texture'),
}


def skimage_data_dir() -> str:
    """Folder of the images bundled with scikit-image.

    Returns:
        str: Path of ``skimage/data`` inside the installed package.
    """
    try:
        import skimage.data
    except ImportError as err:  # pragma: no cover - scikit-image is a runtime requirement
        raise CompositedDataError(
            'scikit-image is needed for the background photos: pip install scikit-image'
        ) from err
    return osp.dirname(skimage.data.__file__)


@functools.lru_cache(maxsize=1)
def load_backgrounds(names: Optional[Tuple[str, ...]] = None) -> Tuple[Background, ...]:
    """Load background images from the scikit-image wheel.

    Args:
        names (tuple[str], optional): Subset of :data:`BACKGROUND_FILES` keys; all when None.
            Defaults to None.

    Returns:
        tuple[Background]: The images as (H, W, 3) uint8 RGB, grey textures replicated to 3 channels,
        in the order of ``names`` (or of :data:`BACKGROUND_FILES`).
    """
    from PIL import Image

    folder = skimage_data_dir()
    out = []
    for name in names or tuple(BACKGROUND_FILES):
        if name not in BACKGROUND_FILES:
            raise CompositedDataError(f'unknown background {name!r}; choose from {sorted(BACKGROUND_FILES)}')
        fname, family = BACKGROUND_FILES[name]
        path = osp.join(folder, fname)
        if not osp.isfile(path):
            raise CompositedDataError(
                f'background image {path} is missing from the scikit-image install; reinstall scikit-image.'
            )
        with Image.open(path) as img:
            arr = np.asarray(img.convert('RGB'), dtype=np.uint8)
        arr.setflags(write=False)
        out.append(Background(name, family, arr))
    return tuple(out)


def backgrounds_of_family(family: str) -> Tuple[Background, ...]:
    """Backgrounds of one family.

    Args:
        family (str): ``'photo'`` or ``'texture'``.

    Returns:
        tuple[Background]: Matching backgrounds, in :data:`BACKGROUND_FILES` order.
    """
    return tuple(bg for bg in load_backgrounds() if bg.family == family)
