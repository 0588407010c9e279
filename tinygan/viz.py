"""Pictures people would rather look at than read: sample grids, loss curves, 2-D scatters.

Pillow only (no matplotlib): a loss plot is a few polylines on a white canvas with a frame,
tick labels and a legend, which is all a training log needs.
"""
from __future__ import annotations
from .graph_dot import draw_graph, to_dot  # noqa: F401  (tinygan.viz.to_dot, draw_graph)

import math
import os

import numpy as np
from PIL import Image, ImageDraw

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats (N, C, H, W) -> uint8 (N, H, W, C)."""
    x = np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255)
    return x.astype(np.uint8).transpose(0, 2, 3, 1)


def image_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> Image.Image:
    """Tile N images (N, C, H, W) in [-1, 1] into one Pillow image, `nrow` per row."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"image_grid: expected (N, C, H, W) images, got shape {images.shape}")
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"image_grid: expected 1 or 3 channels, got {c}")
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol_rows = int(math.ceil(n / nrow))
    tiles = to_uint8(images)
    grid = np.full((ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for k in range(n):
        r, q = divmod(k, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = tiles[k]
    img = Image.fromarray(grid[..., 0] if c == 1 else grid, mode="L" if c == 1 else "RGB")
    if h < 64:     # small digits are hard to see: upscale without smoothing
        scale = max(1, 64 // h)
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def save_image_grid(images: np.ndarray, path: str, nrow: int | None = None) -> str:
    img = image_grid(images, nrow)
    _atomic_save(img, path)
    return path


def scatter_2d(points: np.ndarray, path: str, reference: np.ndarray | None = None,
               centers: np.ndarray | None = None, lim: float = 6.0, size: int = 400) -> str:
    """2-D samples (blue) over real data (light grey) and mode centres (red crosses)."""
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)

    def px(p):
        return ((p[0] + lim) / (2 * lim) * (size - 1), (lim - p[1]) / (2 * lim) * (size - 1))

    if reference is not None:
        for p in np.asarray(reference)[:2000]:
            x, y = px(p)
            d.point((x, y), fill=(190, 190, 190))
    for p in np.asarray(points):
        x, y = px(p)
        d.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=PALETTE[0])
    if centers is not None:
        for p in np.asarray(centers):
            x, y = px(p)
            d.line((x - 4, y, x + 4, y), fill=PALETTE[3], width=2)
            d.line((x, y - 4, x, y + 4), fill=PALETTE[3], width=2)
    d.rectangle((0, 0, size - 1, size - 1), outline=(0, 0, 0))
    _atomic_save(img, path)
    return path


def plot_curves(series: dict[str, list[tuple[float, float]]], path: str, title: str = "",
                width: int = 640, height: int = 400) -> str:
    """Line plot of {name: [(x, y), ...]} with axes, ticks and a legend."""
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 60, width - 130, 30, height - 40
    pts = [p for s in series.values() for p in s if np.isfinite(p[1])]
    if pts:
        xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        x0, x1 = float(xs.min()), float(xs.max()) if xs.max() > xs.min() else float(xs.min()) + 1
        y0, y1 = float(np.percentile(ys, 1)), float(np.percentile(ys, 99))
        if y1 <= y0:
            y0, y1 = y0 - 1, y1 + 1
        span = y1 - y0
        y0, y1 = y0 - 0.05 * span, y1 + 0.05 * span

        def px(x, y):
            y = min(max(y, y0), y1)
            return (left + (x - x0) / (x1 - x0) * (right - left),
                    bottom - (y - y0) / (y1 - y0) * (bottom - top))

        for k in range(5):         # ticks and light grid
            yv = y0 + k * (y1 - y0) / 4
            _, yp = px(x0, yv)
            d.line((left, yp, right, yp), fill=(230, 230, 230))
            d.text((5, yp - 6), f"{yv:.3g}", fill=(0, 0, 0))
            xv = x0 + k * (x1 - x0) / 4
            xp, _ = px(xv, y0)
            d.text((xp - 10, bottom + 5), f"{xv:.0f}", fill=(0, 0, 0))
        for i, (name, s) in enumerate(series.items()):
            colour = PALETTE[i % len(PALETTE)]
            line = [px(x, y) for x, y in s if np.isfinite(y)]
            if len(line) > 1:
                d.line(line, fill=colour, width=2)
            elif line:
                d.point(line[0], fill=colour)
            d.line((right + 10, top + 15 * i + 6, right + 30, top + 15 * i + 6), fill=colour, width=3)
            d.text((right + 35, top + 15 * i), name, fill=(0, 0, 0))
    d.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    d.text((left, 8), title, fill=(0, 0, 0))
    d.text(((left + right) // 2 - 10, height - 18), "step", fill=(0, 0, 0))
    _atomic_save(img, path)
    return path


def _atomic_save(img: Image.Image, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.png"
    img.save(tmp)
    os.replace(tmp, path)
