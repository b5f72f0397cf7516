"""Image validation, re-encoding and thumbnails (Pillow). Blocking and memory-hungry:
the service runs it in a worker process of :mod:`imhub.media.decode_pool`.

Every image is decoded in full and written anew, so what we store holds pixels only:
EXIF (GPS, camera serials), XMP, comments and anything appended after the image data
are dropped. EXIF orientation is applied first so the pixels stand the right way up.
Animated GIF/WebP stay animated (every frame is re-encoded); their thumbnail is the
first frame, a still.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, ImageSequence

from imhub.media.errors import MediaRejected

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; we refuse at the
# warning too. check_dimensions enforces min(our setting, Pillow's limit) explicitly,
# because a process-wide warnings filter can be reset by whoever else touches warnings
# (test runners, -W flags); the filter stays as a second guard.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

# Frames x pixels decoded for one animation, as a multiple of the still-image pixel cap:
# every frame is held as RGBA until the encoder has them all, so this bounds memory and
# CPU like the still cap does. A 480x480 sticker of 100 frames is 23 Mpx, fine; a
# 1,000-frame GIF (3 s CPU, +400 MB when it was allowed) is not.
ANIMATION_PIXEL_FACTOR = 1
MAX_FRAMES = 500

JPEG_QUALITY = 88  # re-encoded originals: visually lossless, usually smaller than a camera's
THUMB_QUALITIES = (80, 70, 60, 50, 40)
THUMB_MIN_TARGET = 12 * 1024  # "a tenth" of a tiny image is not a useful thumbnail size
THUMB_MIN_SIDE = 96


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    data: bytes  # re-encoded original, same format as uploaded
    width: int
    height: int
    thumb: bytes
    thumb_ext: str  # "jpg", or "webp" when the image has transparency
    animated: bool


def process_image(data: bytes, pillow_format: str, max_pixels: int, thumb_side: int) -> ProcessedImage:
    """Validate, re-encode and thumbnail; raises MediaRejected with a readable reason."""
    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as im:
            check_dimensions(im, max_pixels)
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                return _process_animation(im, pillow_format, max_pixels, thumb_side, frames)
            im.load()
            still = _normalise(ImageOps.exif_transpose(im) or im)
            out = _encode(still, pillow_format)
            thumb, thumb_ext = make_thumbnail(still, len(out), thumb_side)
            return ProcessedImage(out, still.width, still.height, thumb, thumb_ext, animated=False)
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected("image dimensions too large") from None
    except MemoryError:  # the worker's address-space limit (decode_pool)
        raise MediaRejected("image needs too much memory to process") from None
    except Exception:
        # Pillow reports damaged input with many exception types (OSError "truncated",
        # SyntaxError, ValueError, struct.error, EOFError...): all mean the same here.
        raise MediaRejected("image is damaged or truncated") from None


def check_dimensions(im: Image.Image, max_pixels: int) -> None:
    """Refuse before decoding: the header alone tells how much memory pixels would take."""
    width, height = im.size
    if width <= 0 or height <= 0:
        raise MediaRejected("image has no pixels")
    if Image.MAX_IMAGE_PIXELS:
        max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)
    if width * height > max_pixels:
        raise MediaRejected(f"image dimensions too large: {width}x{height} (at most {max_pixels} pixels)")


def _normalise(im: Image.Image) -> Image.Image:
    """Pixels in sRGB, in a mode every encoder we use accepts; metadata dropped."""
    icc = im.info.get("icc_profile")
    if icc and im.mode in ("RGB", "RGBA"):
        try:  # wide-gamut phone photos would look washed out without their profile
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            im = ImageCms.profileToProfile(im, src, dst, outputMode=im.mode) or im
        except (ImageCms.PyCMSError, OSError):
            pass
    if im.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        im = im.convert("RGBA" if _has_alpha(im) else "RGB")
    clean = im.copy()
    clean.info = {"transparency": im.info["transparency"]} if "transparency" in im.info else {}
    return clean


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _encode(im: Image.Image, pillow_format: str) -> bytes:
    buf = io.BytesIO()
    if pillow_format == "JPEG":
        im = im if im.mode in ("RGB", "L") else im.convert("RGB")
        im.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif pillow_format == "WEBP":
        im.save(buf, "WEBP", quality=JPEG_QUALITY)
    else:  # PNG, GIF: lossless formats stay lossless
        im.save(buf, pillow_format)
    return buf.getvalue()


def _process_animation(
    im: Image.Image, pillow_format: str, max_pixels: int, thumb_side: int, frames: int
) -> ProcessedImage:
    width, height = im.size
    if frames > MAX_FRAMES or frames * width * height > max_pixels * ANIMATION_PIXEL_FACTOR:
        raise MediaRejected(f"animation too large: {frames} frames of {width}x{height}")
    stills: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(im):
        frame.load()
        durations.append(int(frame.info.get("duration", 100)))
        stills.append(_normalise(frame.convert("RGBA")))
    # Each frame is a full composited picture: clear the canvas, then draw it.
    # (GIF disposal 2 = restore to background; APNG's "background" op is 1.)
    disposal = {"GIF": {"disposal": 2}, "PNG": {"disposal": 1}}.get(pillow_format, {})
    buf = io.BytesIO()
    stills[0].save(
        buf,
        pillow_format,
        save_all=True,
        append_images=stills[1:],
        duration=durations,
        loop=int(im.info.get("loop", 0)),
        **disposal,
    )
    out = buf.getvalue()
    thumb, thumb_ext = make_thumbnail(stills[0], len(out), thumb_side)
    return ProcessedImage(out, width, height, thumb, thumb_ext, animated=True)


def make_thumbnail(im: Image.Image, original_bytes: int, max_side: int) -> tuple[bytes, str]:
    """A still at most ``max_side`` px on its longest side and about a tenth of the
    original's bytes (the seed's 512 KB -> ~51 KB plan): lower the quality first, then
    the size, until it fits."""
    alpha = _has_alpha(im)
    base = im.convert("RGBA" if alpha else "RGB")
    target = max(original_bytes // 10, THUMB_MIN_TARGET)
    side = max_side
    data = b""
    while True:
        small = base.copy()
        small.thumbnail((side, side), Image.Resampling.LANCZOS)
        for quality in THUMB_QUALITIES:
            buf = io.BytesIO()
            if alpha:
                small.save(buf, "WEBP", quality=quality)
            else:
                small.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
            data = buf.getvalue()
            if len(data) <= target:
                return data, "webp" if alpha else "jpg"
        if side <= THUMB_MIN_SIDE:
            return data, "webp" if alpha else "jpg"  # smallest we make; good enough
        side = max(THUMB_MIN_SIDE, side * 3 // 4)
