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


def labelled_grid(images: np.ndarray, nrow: int, row_labels: list[str],
                  captions: list[list[str]] | None = None) -> Image.Image:
    """`image_grid(images, nrow)` with its rows kept as they are, plus a left margin holding
    each row's label (may span lines) and, with `captions`, a band above each row with one
    caption per tile (captions[r][q] over tile q of row r; '' for none)."""
    grid = image_grid(images, nrow).convert("RGB")
    n, rows = len(images), len(row_labels)
    if -(-n // nrow) != rows:
        raise ValueError(f"labelled_grid: {n} images at {nrow} per row make {-(-n // nrow)} "
                         f"rows, but {rows} row labels were given")
    h, w = images.shape[2:]
    s = grid.height / (rows * (h + 2) + 2)                  # image_grid's upscale factor
    tile_h, tile_w, pad = (h + 2) * s, (w + 2) * s, 2 * s
    font, small = _font(14), _font(12)
    probe = ImageDraw.Draw(grid)
    margin = 16 + max(max(_text_size(probe, line, font)[0] for line in label.split("\n"))
                      for label in row_labels)
    band = 18 if captions else 0
    canvas = Image.new("RGB", (margin + grid.width, rows * (int(tile_h) + band) + int(pad)),
                       "white")
    d = ImageDraw.Draw(canvas)
    for r, label in enumerate(row_labels):
        y = r * (int(tile_h) + band)
        strip = grid.crop((0, int(r * tile_h), grid.width, int(r * tile_h + tile_h + pad)))
        canvas.paste(strip, (margin, y + band))
        lines = label.split("\n")
        ty = y + band + pad + (tile_h - pad) / 2 - 9 * len(lines)
        for i, line in enumerate(lines):
            d.text((8, ty + 18 * i), line, fill=(0, 0, 0), font=font if i == 0 else small)
        for q, cap in enumerate((captions or [[]] * rows)[r]):
            if cap:
                cw, _ = _text_size(d, cap, small)
                d.text((margin + pad + q * tile_w + (tile_w - pad - cw) / 2, y + 3), cap,
                       fill=(60, 60, 60), font=small)
    return canvas


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


# -- loss curves ---------------------------------------------------------------------------------
def nice_step(span: float, n: int = 5) -> float:
    """The round step (1, 2, 2.5 or 5 × 10^k) that cuts `span` into about `n` intervals."""
    if not (math.isfinite(span) and span > 0):
        return 1.0
    raw = span / max(1, n)
    k = math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10.0 ** k >= raw * (1 - 1e-9):
            return m * 10.0 ** k
    return 10.0 ** (k + 1)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (multiples of `nice_step`) from one at or below `lo` to one at or
    above `hi`: the axis then runs from the first tick to the last.  lo == hi (a constant
    series) widens to a small range around the value; non-finite bounds give [0, 1]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    lo, hi = min(lo, hi), max(lo, hi)
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        half = 0.1 * abs(lo) if lo else 1.0
        lo, hi = lo - half, hi + half
    step = nice_step(hi - lo, n)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [_round(i * step, step) for i in range(first, last + 1)]


def step_ticks(last_step: float, n: int = 6) -> tuple[float, float, list[float]]:
    """The x axis of a training log: (1, end, ticks), from step 1 to the last step, ticks at
    step 1 and at the round multiples of `nice_step` (at least 1) up to the end (end ≥ 2, so
    a one-row log still has an axis)."""
    end = max(2.0, float(last_step)) if math.isfinite(last_step) else 2.0
    step = max(1.0, nice_step(end - 1, n))          # steps are whole numbers
    ticks = [1.0] + [_round(i * step, step) for i in range(1, int(end // step + 1e-9) + 1)]
    return 1.0, end, sorted(set(t for t in ticks if 1 <= t <= end))


def _round(v: float, step: float) -> float:
    return round(v, max(0, 1 - math.floor(math.log10(step)))) + 0.0        # + 0.0: no "-0"


def tick_label(v: float, step: float) -> str:
    """`v` written with as many decimals as the tick step needs: 0.25, 1.5, 20, 2.5k; ticks
    finer than 0.001 share one power of ten (5e-5, 10e-5, 15e-5), huge ones use %.3g."""
    if v == 0:
        return "0"
    k = math.floor(math.log10(step) + 1e-9)
    if step < 1e-3:
        return f"{v / 10.0 ** k:g}e{k}"
    if abs(v) >= 1e6:
        return f"{v:.3g}"
    if step >= 1000 and abs(v) >= 1000:
        return f"{v / 1000:g}k"
    decimals = max(0, -k + (1 if round(step / 10.0 ** k, 6) == 2.5 else 0))
    return f"{v:.{decimals}f}"


def running_mean(xs, ys, half: float) -> np.ndarray:
    """Centred running mean: at each x the mean of the finite y with x' in [x − h, x + h],
    h = `half` (in steps) shrunk near the ends to keep the window centred (so the first and
    last points are their own raw values, and the curve neither lags nor starts late).
    Works on unevenly spaced steps (loss_G every n_critic steps); NaN where y is not finite;
    same length as ys."""
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    out = np.full(len(ys), np.nan)
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return out
    x, y = xs[ok], ys[ok]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    h = np.minimum(max(0.0, float(half)), np.minimum(x - x[0], x[-1] - x))
    lo = np.searchsorted(x, x - h, side="left")
    hi = np.searchsorted(x, x + h, side="right")
    csum = np.concatenate([[0.0], np.cumsum(y)])
    smoothed = np.empty_like(y)
    smoothed[order] = (csum[hi] - csum[lo]) / (hi - lo)
    out[np.flatnonzero(ok)] = smoothed
    return out


def smoothing_half_width(last_step: float) -> int:
    """Half the smoothing window, in steps: 1/60 of the run (a window of ~1/30), 0 for runs
    under 60 steps (drawn raw), at most 500."""
    return int(min(500, max(0, last_step // 60))) if math.isfinite(last_step) else 0


def _family(name: str) -> str:
    """loss_D, loss_G, loss_D0, loss_recon -> "loss"; hist_G -> "hist"; gp -> "gp"."""
    return name.split("_")[0] if "_" in name else name


def _scale(ys) -> float:
    """How big a series is: the 99th percentile of |y| over its finite values (0 if none)."""
    ys = np.asarray(ys, np.float64)
    ys = np.abs(ys[np.isfinite(ys)])
    return float(np.percentile(ys, 99)) if ys.size else 0.0


def split_panels(series: dict, ratio: float = 10.0) -> list[list[str]]:
    """Which series share a panel.  Series are grouped into families by the name before the
    first "_" (loss_D, loss_G and loss_D0 are one family; hist_G and hist_D another; gp,
    wasserstein, drift each their own), the unit that always stays together.  In order of
    first appearance, a family joins the first panel whose families' scale (99th percentile
    of |y|, `_scale`) is within `ratio` (10×) of its own, else opens a new panel.  So a
    historical-averaging penalty of 1e-4 next to losses of 1 gets its own panel, while a
    gradient penalty of the same size as the critic's loss shares its panel.  All-zero or
    empty series count as fitting anywhere."""
    families: dict[str, list[str]] = {}
    for name in series:
        families.setdefault(_family(name), []).append(name)
    panels: list[tuple[float, float, list[str]]] = []        # (smallest scale, largest, names)
    for names in families.values():
        s = max(_scale([y for _, y in series[k]]) for k in names)
        for i, (lo, hi, members) in enumerate(panels):
            if s == 0 or lo == 0 or (max(hi, s) <= ratio * min(lo, s)):
                nlo = lo if s == 0 else (s if lo == 0 else min(lo, s))
                panels[i] = (nlo, max(hi, s), members + names)
                break
        else:
            panels.append((s, s, list(names)))
    return [members for _, _, members in panels]


def _font(size: int):
    """Pillow's own font: the scalable one (Pillow >= 10.1 with FreeType) at `size` pixels,
    else the fixed bitmap font."""
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError, AttributeError):
        return ImageFont.load_default()


def _text_size(d, text: str, font) -> tuple[int, int]:
    box = d.textbbox((0, 0), text, font=font)
    return box[2] - box[0], box[3] - box[1]


def _lighter(colour, t: float = 0.6):
    return tuple(int(c + (255 - c) * t) for c in colour)


def plot_curves(series: dict[str, list[tuple[float, float]]], path: str, title: str = "",
                width: int = 720, height: int | None = None, smooth: bool = True) -> str:
    """Line plot of {name: [(step, y), ...]}: one panel per group of `split_panels`, all on
    the x axis of `step_ticks` (step 1 to the last step), round y ticks (`nice_ticks`), each
    series drawn raw (thin, light) and, with `smooth`, as its centred running mean
    (`running_mean`, window from `smoothing_half_width`; bold), a legend per panel.
    Non-finite points leave gaps."""
    series = {k: [(float(x), float(y)) for x, y in v] for k, v in series.items()}
    groups = split_panels(series) if series else [[]]
    font, small = _font(13), _font(11)
    panel_h = 260 if len(groups) == 1 else 200
    height = height or (50 + len(groups) * (panel_h + 30) + 10)
    panel_h = (height - 60) // len(groups) - 30
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    left, right = 70, width - 170
    xs_all = [x for v in series.values() for x, _ in v]
    x0, x1, xticks = step_ticks(max(xs_all) if xs_all else 1)
    xstep = max(1.0, nice_step(x1 - x0, 6))              # the step `step_ticks` used
    half = smoothing_half_width(x1) if smooth else 0
    how = (f"thin: raw values; bold: centred running mean over {2 * half + 1} steps" if half
           else "raw values (under 60 steps: not smoothed)" if smooth else "raw values")
    smooth = half > 0
    d.text((left, 8), title, fill=(0, 0, 0), font=font)
    d.text((left, 26), how, fill=(90, 90, 90), font=small)
    colours = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(series)}
    for g, names in enumerate(groups):
        top = 50 + g * (panel_h + 30)
        bottom = top + panel_h
        raw = {k: np.array(series[k], np.float64).reshape(-1, 2) for k in names}
        sm = {k: running_mean(v[:, 0], v[:, 1], half) for k, v in raw.items()} if smooth else {}
        vals = [v[:, 1][np.isfinite(v[:, 1])] for v in raw.values()]
        vals = [v for v in vals if v.size]
        if vals:
            lo = min(np.percentile(v, 1) for v in vals)
            hi = max(np.percentile(v, 99) for v in vals)
            for s in sm.values():
                f = s[np.isfinite(s)]
                if f.size:
                    lo, hi = min(lo, f.min()), max(hi, f.max())
        else:
            lo, hi = 0.0, 1.0
        pad = 0.02 * (hi - lo)             # keep lines off the frame, but don't cross 0
        lo = 0.0 if lo >= 0 > lo - pad else lo - pad
        hi = 0.0 if hi <= 0 < hi + pad else hi + pad
        yticks = nice_ticks(lo, hi, max(3, panel_h // 50))
        y0, y1 = yticks[0], yticks[-1]
        ystep = yticks[1] - yticks[0]
        pw, ph = right - left, bottom - top

        def px(x, y):           # into the plot area's own pixels, clipped to ±1e5
            return (min(max((x - x0) / (x1 - x0) * pw, -1e5), 1e5),
                    min(max((y1 - y) / (y1 - y0) * ph, -1e5), 1e5))

        for yv in yticks:
            yp = top + px(x0, yv)[1]
            d.line((left, yp, right, yp), fill=(232, 232, 232))
            label = tick_label(yv, ystep)
            tw, th = _text_size(d, label, small)
            d.text((left - 6 - tw, yp - th / 2 - 2), label, fill=(0, 0, 0), font=small)
        for xv in xticks:
            xp = left + px(xv, y0)[0]
            d.line((xp, top, xp, bottom), fill=(240, 240, 240))
            d.line((xp, bottom, xp, bottom + 4), fill=(0, 0, 0))
            label = tick_label(xv, xstep)
            tw, _ = _text_size(d, label, small)
            d.text((xp - tw / 2, bottom + 6), label, fill=(0, 0, 0), font=small)
        area = Image.new("RGBA", (pw + 1, ph + 1), (0, 0, 0, 0))   # lines clip at its edges
        a = ImageDraw.Draw(area)
        layers = [(raw[k][:, 1], k, _lighter(colours[k]) if smooth else colours[k],
                   1 if smooth else 2) for k in names]
        layers += [(sm[k], k, colours[k], 3) for k in sm]
        for ys, k, colour, w in layers:
            for run in _finite_runs(raw[k][:, 0], ys):
                pts = [px(x, y) for x, y in run]
                if len(pts) > 1:
                    a.line(pts, fill=colour, width=w, joint="curve")
                else:
                    x, y = pts[0]
                    a.ellipse((x - w - 1, y - w - 1, x + w + 1, y + w + 1), fill=colour)
        d.rectangle((left, top, right, bottom), outline=(0, 0, 0))
        img.paste(area, (left, top), area)       # over the frame: a line on it stays visible
        for i, k in enumerate(names):
            ly = top + 6 + 18 * i
            d.line((right + 10, ly + 7, right + 34, ly + 7), fill=_lighter(colours[k]), width=1)
            d.line((right + 10, ly + 7, right + 34, ly + 7), fill=colours[k],
                   width=3 if smooth else 2)
            d.text((right + 40, ly), k, fill=(0, 0, 0), font=font)
        d.text((right + 28, bottom + 6), "step", fill=(0, 0, 0), font=small)
    _atomic_save(img, path)
    return path


def _finite_runs(xs, ys):
    """The stretches of (x, y) between non-finite values: a line is drawn through each."""
    run = []
    for x, y in zip(xs, ys):
        if math.isfinite(x) and math.isfinite(y):
            run.append((x, y))
        elif run:
            yield run
            run = []
    if run:
        yield run


def _atomic_save(img: Image.Image, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.png"
    img.save(tmp)
    os.replace(tmp, path)
