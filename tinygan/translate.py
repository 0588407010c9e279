"""`tinygan translate RUN --input FILE_OR_FOLDER --out FILE_OR_FOLDER`: a trained translator
(pix2pix, cyclegan, srgan) applied to the user's own images.

Each input is read as training read its domain: turned upright by its EXIF tag, converted to
grey or RGB as the run's images are, centre-cropped and resized (Lanczos) to the run's size —
for an input domain stored enlarged (mnist_x4's 8×8 digits), to the small size, then each
pixel repeated, exactly as the dataset stores it.  Outputs are PNGs at the run's size.

    FILE  → FILE.png           one image
    FOLDER → FOLDER            every image under it, recursively, as NAME.png (sub-folders kept)
    --grid                     each PNG shows input | output side by side; with a FOLDER of
                               inputs and --out FILE.png, one grid of all of them
"""
from __future__ import annotations

import os

import numpy as np

from . import viz
from .data.dataset import DataFormatError, DataNotFoundError, to_float
from .data.folder import EXTENSIONS, list_images


def read_inputs(files: list, channels: int, size: tuple, scale: int = 1) -> np.ndarray:
    """float32 (N, channels, H, W) in [-1, 1] from image files (see the module docstring)."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    mode = "L" if channels == 1 else "RGB"
    h, w = size[0] // scale, size[1] // scale
    lanczos = getattr(Image, "Resampling", Image).LANCZOS
    out = np.empty((len(files), channels, h, w), np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                img = ImageOps.fit(ImageOps.exif_transpose(img).convert(mode), (w, h),
                                   method=lanczos)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise DataFormatError(f"cannot read image {f} ({e})") from None
        a = np.asarray(img, np.uint8)
        out[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    if scale > 1:
        out = out.repeat(scale, axis=2).repeat(scale, axis=3)
    return to_float(out)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """(C, H, W) in [-1, 1] → (H, W) or (H, W, 3) uint8, as PIL saves it."""
    u8 = np.clip(np.round((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return u8[0] if u8.shape[0] == 1 else u8.transpose(1, 2, 0)


def _write(path: str, image: np.ndarray) -> None:
    from PIL import Image
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    Image.fromarray(image).save(tmp)
    os.replace(tmp, path)


def translate_files(checkpoint: str, source: str, out: str, direction: str = "AtoB",
                    grid: bool = False, device: str = "cpu") -> list:
    """Translate the image file or folder `source` with the run in `checkpoint`; returns the
    paths written."""
    from .checkpoint import build_from_checkpoint
    from .gans.translation import translate_all
    if os.path.isdir(source):
        files = list_images(source)
        if not files:
            raise DataNotFoundError(f"no images ({', '.join(EXTENSIONS)}) in {source} or its "
                                    f"sub-folders")
        one_file_out = out.lower().endswith(".png")
        if one_file_out and not grid:
            raise ValueError(f"--input is a folder: --out must be a folder (or add --grid for "
                             f"one picture of them all), got {out!r}")
    elif os.path.isfile(source):
        files, one_file_out = [source], True
        if not out.lower().endswith(".png"):
            raise ValueError(f"--input is one image: --out must end with .png, got {out!r}")
    else:
        raise FileNotFoundError(f"--input {source}: no such file or folder")

    variant, meta, _ = build_from_checkpoint(checkpoint, device=device)
    if "domains" not in meta:
        raise ValueError(f"{checkpoint} is a {meta['variant']} run on {meta['data']}, not an "
                         f"image-to-image run: translate takes pix2pix, cyclegan or srgan runs")
    channels = int(meta.get("channels", variant.data_shape[0] // 2))
    # Only A may be stored enlarged: a BtoA translation reads B-sized inputs.
    scale = int(meta.get("scale", 1)) if direction == "AtoB" else 1
    x = read_inputs(files, channels, variant.data_shape[1:], scale)
    y = translate_all(variant, x, direction)

    if os.path.isdir(source) and one_file_out:           # --grid into one picture
        pairs = np.stack([x, y], axis=1).reshape(-1, *x.shape[1:])
        viz.save_image_grid(pairs, out, nrow=2 * min(4, len(x)))
        return [out]
    written = []
    for f, xi, yi in zip(files, x, y):
        if one_file_out:
            target = out
        else:
            stem = os.path.splitext(os.path.relpath(f, source))[0]
            target = os.path.join(out, stem + ".png")
        image = np.concatenate([xi, yi], axis=2) if grid else yi     # side by side: along W
        _write(target, to_uint8(image))
        written.append(target)
    return written


def add_translate_arguments(p) -> None:
    from .arguments import add_checkpoint_argument, add_device_argument, path
    add_checkpoint_argument(p)
    p.add_argument("--input", type=path, required=True,
                   help="an image file, or a folder of them (searched recursively)")
    p.add_argument("--out", type=path, required=True,
                   help="FILE.png for one input image, a folder for a folder of inputs (or "
                        "FILE.png with --grid: one picture of them all)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                   help="AtoB (default): the way the run was trained; BtoA where the variant "
                        "learned both ways (cyclegan)")
    p.add_argument("--grid", action="store_true", help="show input | output side by side")
    add_device_argument(p)


def cmd_translate(args) -> int:
    written = translate_files(args.checkpoint, args.input, args.out, args.direction,
                              grid=args.grid, device=args.device)
    if os.path.isdir(args.input) and args.out.lower().endswith(".png"):
        n = len(list_images(args.input))
        print(f"wrote {n} input{'s' if n > 1 else ''} beside {'their' if n > 1 else 'its'} "
              f"translation{'s' if n > 1 else ''} to {args.out}")
        return 0
    where = written[0] if len(written) == 1 else args.out
    print(f"wrote {len(written)} translated image{'s' if len(written) > 1 else ''} to {where}")
    return 0
