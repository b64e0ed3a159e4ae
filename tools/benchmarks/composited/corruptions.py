"""Image corruptions for the out-of-domain (CorCOCO-style) copy of the composited detection val set.

Every corruption is a pure function ``(image, severity, rng) -> image`` on (H, W, 3) uint8 RGB arrays with
severity 1 (mild) to 5 (strong). Geometry never changes, so the val annotations stay valid unchanged.
"""

from __future__ import annotations

from typing import Callable, Dict

import cv2
import numpy as np

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _clip(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _level(severity: int, values) -> float:
    if not 1 <= severity <= 5:
        raise ValueError(f'severity must be in 1..5, got {severity}')
    return values[severity - 1]


def gaussian_noise(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise, std 0.06-0.32 of the intensity range.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        severity (int): 1..5.
        rng (np.random.Generator): Random stream.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    std = _level(severity, (0.06, 0.10, 0.15, 0.22, 0.32)) * 255.0
    return _clip(img.astype(np.float32) + rng.normal(0.0, std, size=img.shape).astype(np.float32))


def shot_noise(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson (photon) noise; fewer photons per intensity unit at higher severity.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        severity (int): 1..5.
        rng (np.random.Generator): Random stream.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    photons = _level(severity, (60.0, 25.0, 12.0, 6.0, 3.0))
    return _clip(rng.poisson(img.astype(np.float64) / 255.0 * photons) / photons * 255.0)


def gaussian_blur(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, sigma 1-4 pixels.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        severity (int): 1..5.
        rng (np.random.Generator): Unused (deterministic corruption).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    sigma = _level(severity, (1.0, 1.5, 2.0, 3.0, 4.0))
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)


def defocus_blur(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus blur: convolution with a disk of radius 2-6 pixels.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        severity (int): 1..5.
        rng (np.random.Generator): Unused (deterministic corruption).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    radius = int(_level(severity, (2, 3, 4, 5, 6)))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = (yy**2 + xx**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    return _clip(cv2.filter2D(img.astype(np.float32), -1, disk, borderType=cv2.BORDER_REFLECT))


def contrast(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Contrast reduction towards the image mean, keeping 60%-12% of it.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        severity (int): 1..5.
        rng (np.random.Generator): Unused (deterministic corruption).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    factor = _level(severity, (0.6, 0.45, 0.3, 0.2, 0.12))
    x = img.astype(np.float32)
    mean = x.mean(axis=(0, 1), keepdims=True)
    return _clip((x - mean) * factor + mean)


def smooth_field(height: int, width: int, rng: np.random.Generator, octaves: int = 4) -> np.ndarray:
    """Low-frequency random field in [0, 1] (sum of upsampled noise octaves).

    Args:
        height (int): Output height.
        width (int): Output width.
        rng (np.random.Generator): Random stream.
        octaves (int): Number of noise octaves (2x2, 4x4, ...). Defaults to 4.

    Returns:
        np.ndarray: (height, width) float32 field normalised to [0, 1].
    """
    field = np.zeros((height, width), dtype=np.float32)
    for o in range(octaves):
        cells = 2 ** (o + 1)
        noise = rng.random((cells + 1, cells + 1)).astype(np.float32)
        field += cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * 0.5**o
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def haze(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Fog-like haze: ``img * t + airlight * (1 - t)`` with a smooth random transmission map ``t``.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        severity (int): 1..5; mean transmission 0.8 down to 0.35.
        rng (np.random.Generator): Random stream (transmission map and airlight).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    mean_t = _level(severity, (0.8, 0.68, 0.56, 0.45, 0.35))
    field = smooth_field(img.shape[0], img.shape[1], rng)
    t = np.clip(mean_t + (field - 0.5) * 0.3, 0.05, 1.0)[..., None]
    airlight = rng.uniform(200, 240)
    return _clip(img.astype(np.float32) * t + airlight * (1.0 - t))


def jpeg(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG compression artefacts: encode at quality 25-5 and decode.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        severity (int): 1..5.
        rng (np.random.Generator): Unused (deterministic corruption).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    quality = int(_level(severity, (25, 18, 12, 8, 5)))
    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok, 'JPEG encoding failed'
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def pixelate(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Down-sample (area) then up-sample (nearest) by a factor 0.6-0.25.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        severity (int): 1..5.
        rng (np.random.Generator): Unused (deterministic corruption).

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    factor = _level(severity, (0.6, 0.5, 0.4, 0.3, 0.25))
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(w * factor)), max(1, int(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


#: Name -> corruption function. The order is part of the seeded draw; append, never reorder.
CORRUPTIONS: Dict[str, Corruption] = {
    'gaussian_noise': gaussian_noise,
    'shot_noise': shot_noise,
    'gaussian_blur': gaussian_blur,
    'defocus_blur': defocus_blur,
    'contrast': contrast,
    'haze': haze,
    'jpeg': jpeg,
    'pixelate': pixelate,
}


def random_corruption(img: np.ndarray, rng: np.random.Generator) -> tuple:
    """Apply one random corruption at a random severity.

    Args:
        img (np.ndarray): (H, W, 3) uint8 RGB.
        rng (np.random.Generator): Random stream (choice, severity and the corruption's own noise).

    Returns:
        tuple[np.ndarray, str, int]: Corrupted image, corruption name, severity.
    """
    names = list(CORRUPTIONS)
    name = names[int(rng.integers(len(names)))]
    severity = int(rng.integers(1, 6))
    return CORRUPTIONS[name](img, severity, rng), name, severity
