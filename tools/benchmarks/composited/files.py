"""Deterministic writing of composited benchmarks: folders, JSON, PNG/JPEG, the ``meta.json`` marker."""

from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
import shutil
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

try:
    import fcntl
except ImportError:  # not POSIX: builds still go through a temporary folder, without the lock
    fcntl = None

import cv2
import numpy as np

from .errors import CompositedDataError

#: Every results table built on these data must carry this label.
PROVENANCE = 'composited from real images'
#: Name of the file that marks a folder as built by mmssod and records the generation parameters.
META_FILE = 'meta.json'
#: PNG zlib level; fixed so that files are byte-identical for a seed.
PNG_COMPRESSION = 3
#: JPEG quality of re-ID crops (Market-1501 ships JPEG); fixed for determinism.
JPEG_QUALITY = 95


def dumps_json(obj: Any) -> str:
    """Serialise to JSON with sorted keys and fixed separators (byte-identical for equal input).

    Args:
        obj (Any): JSON-serialisable object.

    Returns:
        str: The JSON text.
    """
    return json.dumps(obj, sort_keys=True, separators=(',', ':'), ensure_ascii=True)


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` with :func:`dumps_json`.

    Args:
        path (str): Output file.
        obj (Any): JSON-serialisable object.
    """
    with open(path, 'w', encoding='ascii') as f:
        f.write(dumps_json(obj))


def write_lines(path: str, lines: Sequence[str]) -> None:
    """Write one item per line (``\\n`` endings).

    Args:
        path (str): Output file.
        lines (Sequence[str]): Lines without newlines.
    """
    with open(path, 'w', encoding='ascii', newline='\n') as f:
        f.write(''.join(f'{line}\n' for line in lines))


def save_image(path: str, image: np.ndarray) -> None:
    """Save an RGB (H, W, 3) or label (H, W) uint8 array; PNG or JPEG by extension, fixed settings.

    Args:
        path (str): Output file ending in ``.png`` or ``.jpg``.
        image (np.ndarray): uint8 pixels, RGB order for colour images.
    """
    if image.ndim == 3:
        image = np.ascontiguousarray(image[..., ::-1])  # OpenCV writes BGR
    if path.endswith('.png'):
        params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    if not cv2.imwrite(path, image, params):
        raise CompositedDataError(f'could not write image {path}')


def load_image(path: str) -> np.ndarray:
    """Read an image written by :func:`save_image`.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB, or (H, W) uint8 for single-channel PNGs.
    """
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise CompositedDataError(f'could not read image {path}')
    return img[..., ::-1].copy() if img.ndim == 3 else img


def read_meta(out: str) -> Optional[Dict[str, Any]]:
    """The ``meta.json`` of a folder built by mmssod, or None.

    Args:
        out (str): Benchmark folder.

    Returns:
        dict | None: Parsed meta data when the marker exists and parses.
    """
    path = osp.join(out, META_FILE)
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='ascii') as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and 'generator' in meta else None


def check_writable(out: str) -> str:
    """Create ``out`` if needed and check that files can be written into it.

    Args:
        out (str): Output folder.

    Returns:
        str: ``out`` as an absolute path.

    Raises:
        CompositedDataError: When the folder cannot be created or written.
    """
    out = osp.abspath(out)
    try:
        os.makedirs(out, exist_ok=True)
        probe = osp.join(out, f'.write-test-{os.getpid()}')
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as err:
        raise CompositedDataError(
            f'output folder {out} is not writable ({err.strerror or err}); choose another --out'
        ) from err
    return out


def prepare_out_dir(out: str, generator: str, owned: Sequence[str]) -> str:
    """Create (or clean) an output folder and make sure it is writable.

    A folder that already holds files is only reused when its ``meta.json`` says mmssod built it with the
    same ``generator``; then the paths in ``owned`` are removed before regeneration. Anything else is
    refused rather than overwritten.

    Args:
        out (str): Output folder.
        generator (str): Name recorded in ``meta.json`` (e.g. ``'composited_det'``).
        owned (Sequence[str]): Files/folders (relative to ``out``) this generator writes.

    Returns:
        str: ``out`` as an absolute path.
    """
    out = check_writable(out)
    entries = [e for e in os.listdir(out) if not e.startswith('.')]
    if entries:
        meta = read_meta(out)
        if meta is None or meta.get('generator') != generator:
            raise CompositedDataError(
                f'output folder {out} is not empty and was not built by {generator}; '
                'empty it or choose another --out'
            )
        for rel in list(owned) + [META_FILE]:
            path = osp.join(out, rel)
            if osp.isdir(path):
                shutil.rmtree(path)
            elif osp.exists(path):
                os.remove(path)
    return out


def start_build(
    out: str, generator: str, version: int, owned: Sequence[str], seed: int, params: Dict[str, Any]
) -> tuple:
    """Prepare ``out`` (see :func:`prepare_out_dir`) and write an incomplete ``meta.json`` marker.

    The caller adds its results to the returned meta, sets ``complete=True`` and writes it again, so a
    build that is interrupted never looks like a finished one.

    Args:
        out (str): Output folder.
        generator (str): Generator name recorded in ``meta.json``.
        version (int): Generator version recorded in ``meta.json``.
        owned (Sequence[str]): Files/folders (relative to ``out``) this generator writes.
        seed (int): Generation seed.
        params (dict): Generation parameters.

    Returns:
        tuple[str, dict]: ``out`` as an absolute path, and the meta dict written so far.
    """
    out = prepare_out_dir(out, generator, owned)
    meta = {
        'generator': generator,
        'generator_version': version,
        'provenance': PROVENANCE,
        'seed': int(seed),
        'params': params,
        'complete': False,
    }
    write_json(osp.join(out, META_FILE), meta)
    return out, meta


def makedirs(*paths: str) -> None:
    """``os.makedirs(..., exist_ok=True)`` for several folders.

    Args:
        *paths (str): Folders to create.
    """
    for path in paths:
        os.makedirs(path, exist_ok=True)


def percent_tag(percent: float) -> str:
    """How a labeled percentage appears in split file names: ``1``, ``5``, ``10``, ``0.5``.

    Args:
        percent (float): Percentage in (0, 100].

    Returns:
        str: Integer text when the value is whole, else the shortest float text.
    """
    return str(int(percent)) if float(percent).is_integer() else repr(float(percent))


@contextlib.contextmanager
def exclusive_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed); other holders wait until it is released.

    Args:
        path (str): Lock file.
    """
    with open(path, 'a') as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def is_built(root: str, generator: str, want: Dict[str, Any]) -> bool:
    """Whether ``root`` holds a complete build of ``generator`` whose ``meta.json`` has ``want``'s values.

    Args:
        root (str): Benchmark folder.
        generator (str): Generator name.
        want (dict): ``meta.json`` keys and the values they must have (version, seed, params ...).

    Returns:
        bool: True for a finished build with those values.
    """
    meta = read_meta(root)
    return (
        meta is not None
        and meta.get('generator') == generator
        and meta.get('complete') is True
        and all(meta.get(k) == v for k, v in want.items())
    )


def ensure_built(
    root: str,
    generator: str,
    version: int,
    build: Callable[..., Any],
    seed: int,
    cfg: Any,
    fmnist_root: Optional[str] = None,
    replace: bool = False,
) -> str:
    """Build a benchmark into ``root`` once, safely when several processes ask for it together.

    ``root`` is reused when it holds a complete build of ``generator`` with this ``version``, ``seed`` and
    ``cfg``. Otherwise, under an exclusive lock on ``<parent>/.<name>.lock``, ``build(folder, seed, cfg,
    fmnist_root)`` writes the set into a temporary sibling folder that is then renamed into place: nobody sees
    half a set, and a process that waited for the lock finds the finished build and reuses it.

    Args:
        root (str): Benchmark folder.
        generator (str): Generator name recorded in ``meta.json``.
        version (int): Generator version recorded in ``meta.json``.
        build (Callable): The generator's ``build_*`` function.
        seed (int): Generation seed.
        cfg: The generator's config (its ``to_dict()`` is the recorded ``params``).
        fmnist_root (str, optional): Fashion-MNIST folder. Defaults to None.
        replace (bool): Replace a finished build of ``generator`` with other values; when False such a
            build is an error (it may hold another run's data). Defaults to False.

    Returns:
        str: ``root`` (as given).

    Raises:
        CompositedDataError: ``root`` holds other files, or (``replace=False``) another finished build.
    """
    want = {'generator_version': version, 'seed': int(seed), 'params': cfg.to_dict()}
    if is_built(root, generator, want):
        return root
    parent, name = osp.split(osp.abspath(root))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as err:
        raise CompositedDataError(f'cannot create {parent}: {err.strerror or err}') from err
    with exclusive_lock(osp.join(parent, f'.{name}.lock')):
        if is_built(root, generator, want):  # built by another process while this one waited
            return root
        meta = read_meta(root)
        if osp.isdir(root) and os.listdir(root):
            if meta is None or meta.get('generator') != generator:
                raise CompositedDataError(
                    f'{root} exists and was not built by {generator}; remove it or pass another folder'
                )
            if meta.get('complete') is True and not replace:
                other = sorted(k for k, v in want.items() if meta.get(k) != v)
                raise CompositedDataError(
                    f'{root} holds a {generator} build with other {other} than asked; remove it or pass '
                    'another folder'
                )
        tmp = osp.join(parent, f'.{name}.building-{os.getpid()}')
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp, seed, cfg, fmnist_root)
            if osp.exists(root):
                shutil.rmtree(root)
            os.replace(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root
