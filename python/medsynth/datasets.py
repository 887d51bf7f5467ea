"""Data: generated labelled image sets (shapes, and phantoms of the paper's three domains) and
image folders in torchvision's ImageFolder layout."""
from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import _engine, _readers
from ._core import ProgressReporter
from ._paths import component, fspath

#: Class names of ``make_shapes`` in label order.
SHAPE_CLASSES = ("disc", "square", "triangle", "cross", "ring", "horizontal_bars", "vertical_bars", "diagonal_bars")


def make_shapes(n_per_class: int = 100, num_classes: int = 4, size: int = 64, channels: int = 1, seed: int = 0,
                return_masks: bool = False):
    """A labelled image set generated natively: one shape per class (``SHAPE_CLASSES``) at a
    random position, size and brightness on a noisy, unevenly lit background, so that telling the
    classes apart needs convolutions.

    Returns ``(X, y)``: X float32 in [0, 1], shape (n, size, size) for one channel or
    (n, size, size, 3); y int64 labels 0..num_classes-1, interleaved by class. With
    ``return_masks=True``, ``(X, y, masks)``: masks bool (n, size, size), True on the shape's own
    pixels (the "lesion", for testing where explanations point).
    """
    n = int(n_per_class) * int(num_classes)
    if n_per_class < 1:
        raise ValueError("n_per_class must be at least 1")
    images = np.empty((n, channels, size, size), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    masks = np.empty((n, size, size), dtype=np.uint8) if return_masks else None
    _engine.make_shapes(int(n_per_class), int(num_classes), int(size), int(channels), int(seed) & (2**64 - 1), images, labels,
                        masks)
    x = images[:, 0] if channels == 1 else images.transpose(0, 2, 3, 1)
    if return_masks:
        return np.ascontiguousarray(x), labels, masks.astype(bool)
    return np.ascontiguousarray(x), labels


IMAGE_SUFFIXES = (".png",)


def load_image_folder(root, *, dtype=np.float32):
    """Reads an ImageFolder tree (``root/<class>/<image>.png``, torchvision's layout).

    Returns ``(X, y, class_names)``: images stacked as (n, H, W) or (n, H, W, C) (all images must
    share one size and channel count), y int64 indices into the sorted class names. With
    ``dtype=np.float32`` pixels are scaled to [0, 1]; pass ``dtype=None`` to keep uint8/uint16.
    """
    from .io import read_png

    if dtype is not None and not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(f"dtype must be a floating-point type (pixels scaled to [0, 1]) or None (the files' "
                        f"uint8/uint16 as they are), got {np.dtype(dtype)}")
    root = Path(fspath(root, "root"))
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist")
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not class_names:
        raise ValueError(f"'{root}' has no class subfolders (expected root/<class>/<image>.png)")
    images, labels = [], []
    for index, name in enumerate(class_names):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(read_png(path))
                labels.append(index)
    if not images:
        raise ValueError(f"'{root}' holds no PNG images")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"images in '{root}' have different shapes {sorted(shapes)[:3]}; resize them to one size first")
    x = np.stack(images)
    if dtype is not None:
        scale = 65535.0 if x.dtype == np.uint16 else 255.0
        x = (x.astype(np.float32) / np.float32(scale)).astype(dtype)
    return x, np.array(labels, dtype=np.int64), class_names


def save_image_folder(root, X, y, class_names=None, *, bit_depth: int = 8, prefix: str = "img") -> list:
    """Writes images as ``root/<class>/<prefix>_<index>.png`` (atomic writes) and returns the paths.

    X: (n, H, W) or (n, H, W, C) floats in [0, 1] (or uint8/uint16 as they are). With
    ``class_names``, y holds indices 0..len(class_names)-1; without, each label's text names its
    folder. Folder names and ``prefix`` must be single path components (no separators, not "." or
    "..", no NUL; folder names not empty), so nothing is written outside ``root``: anything else
    raises ValueError naming the argument before any file is written.
    """
    from .io import write_png

    x = np.asarray(X)
    y = np.asarray(y)
    root = Path(fspath(root, "root"))
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must be a 1-D array with one label per image ({len(x)}), got shape {y.shape}")
    component(prefix, "prefix", allow_empty=True)
    if class_names is not None:
        class_names = [component(c, f"class_names[{i}]") for i, c in enumerate(class_names)]
    folders = []
    for label in y:
        if class_names is not None:
            if not (np.issubdtype(y.dtype, np.integer) and 0 <= int(label) < len(class_names)):
                raise ValueError(f"y holds {label!r}, not an index into class_names (0..{len(class_names) - 1})")
            folders.append(class_names[int(label)])
        else:
            folders.append(component(label, f"the folder name of label {label!r} (from y)"))
    paths = []
    for i, (image, name) in enumerate(zip(x, folders)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{prefix}_{i:06d}.png"
        write_png(path, image, bit_depth=bit_depth)
        paths.append(os.fspath(path))
    return paths


# ---- phantoms of the paper's three domains ---------------------------------------------------------

#: Phantom domains from the engine's registry: name -> {"classes", "default_counts", "channels", "summary"}.
PHANTOM_DOMAINS = {d["name"]: d for d in json.loads(_engine.registry("phantom_domains"))}


def phantom(domain: str, n_per_class=None, image_size: int = 128, seed: int = 0, return_masks: bool = False,
            *, progress: bool = False):
    """The paper's data domains as phantoms drawn natively, with a lesion mask per image.

    domain : "brain_mri" (glioma, meningioma, notumor, pituitary: axial T1 contrast-enhanced
        slices), "all" (benign, early, pre, pro: Wright-Giemsa blood smears, RGB) or "covid_ct"
        (covid, non_covid: chest CT in a lung window). ``PHANTOM_DOMAINS`` lists them.
    n_per_class : None for the paper's Table 1 counts ('Total Images': brain 1621/1645/2000/1757,
        ALL 504/985/963/804, CT 1252/1229), an int for every class, or one count per class
        (a sequence, or a dict from class name to count).
    image_size : side in pixels (16 to 1024); anatomy is drawn in millimetres (micrometres for
        smears), so every size shows the same scene.
    seed : image j of class k depends only on (seed, k, j): the same seed gives the same bytes on
        any machine thread count, and asking for more images only appends images.
    return_masks : also return the lesion masks.

    Returns ``(X, y, class_names)`` (and ``masks``): X float32 in [0, 1], (n, H, W) for gray
    domains or (n, H, W, 3) for "all"; y int64, images class by class; masks uint8 (n, H, W), 1
    on the lesion: the tumour for brain MRI (empty for notumor), the lymphoid cells for ALL, the
    opacities or other finding for CT (empty for normal non-COVID slices).
    """
    if domain not in PHANTOM_DOMAINS:
        raise ValueError(f"unknown phantom domain {domain!r}; choose one of {', '.join(PHANTOM_DOMAINS)}")
    info = PHANTOM_DOMAINS[domain]
    names = list(info["classes"])
    if n_per_class is None:
        counts = [int(c) for c in info["default_counts"]]
    elif isinstance(n_per_class, dict):
        unknown = set(n_per_class) - set(names)
        if unknown:
            raise ValueError(f"n_per_class names unknown classes {sorted(unknown)}; {domain} has {names}")
        counts = [int(n_per_class.get(name, 0)) for name in names]
    elif np.ndim(n_per_class) == 0:
        counts = [int(n_per_class)] * len(names)
    else:
        counts = [int(c) for c in n_per_class]
        if len(counts) != len(names):
            raise ValueError(f"n_per_class needs {len(names)} counts ({', '.join(names)}), got {len(counts)}")
    if any(c < 0 for c in counts) or sum(counts) < 1:
        raise ValueError(f"n_per_class must be non-negative with at least one image, got {counts}")
    size = int(image_size)
    channels = int(info["channels"])
    n = sum(counts)
    x = np.empty((n, size, size, channels) if channels > 1 else (n, size, size), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    masks = np.empty((n, size, size), dtype=np.uint8) if return_masks else None
    reporter = ProgressReporter(progress, f"drawing {domain} phantoms", unit="image")
    try:
        _engine.make_phantom(domain, np.asarray(counts, dtype=np.int64), size, int(seed) & (2**64 - 1), True, x, y, masks,
                             reporter)
    finally:
        reporter.close()
    return (x, y, names, masks) if return_masks else (x, y, names)


# ---- image folders ---------------------------------------------------------------------------------


def _find_files(root: Path, classes):
    """(path, kind, class index) of every image file under root/<class>/ (recursively, sorted,
    hidden files skipped; files of other types ignored, as torchvision does)."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is not None:
        missing = [c for c in classes if c not in names]
        if missing:
            raise ValueError(f"'{root}' has no class folder(s) {missing}; it has {names}")
        names = list(classes)
    if not names:
        raise ValueError(f"'{root}' has no class subfolders (expected root/<class>/<image>, torchvision's ImageFolder layout)")
    files = []
    for index, name in enumerate(names):
        for folder, dirs, filenames in sorted(os.walk(os.path.join(root, name), followlinks=True)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for filename in sorted(filenames):
                kind = None if filename.startswith(".") else _readers.kind_of(filename)
                if kind:
                    files.append((os.path.join(folder, filename), kind, index))
    return names, files


def _to_float(image: np.ndarray, scale: float, channels: int) -> np.ndarray:
    """Samples (H, W, C) divided by their full scale, as float32 with `channels` channels."""
    x = image.astype(np.float32)
    if scale != 1.0:
        x /= np.float32(scale)
    if x.shape[2] == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=2)
    # ITU-R 601-2 luma, as Pillow's convert("L")
    return x[:, :, :1] * np.float32(0.299) + x[:, :, 1:2] * np.float32(0.587) + x[:, :, 2:3] * np.float32(0.114)


def load_folder(path, image_size=None, channels=None, on_error: str = "raise", *, window=None, classes=None,
                nifti_slices: str = "all", workers=None, return_paths: bool = False, progress: bool = False):
    """Reads a labelled image folder in torchvision's ImageFolder layout, ``root/<class>/<image>``
    (class folders sorted by name give the labels; images found recursively, hidden files and
    files of other types ignored, as torchvision does).

    Formats: PNG natively (8 and 16 bit); JPEG, BMP, TIFF, WebP, GIF, PNM through Pillow
    (``pip install 'medsynth[images]'``); DICOM through pydicom (``medsynth[dicom]``, rescale
    slope/intercept applied, MONOCHROME1 inverted, multi-frame files give one image per frame);
    NIfTI (.nii, .nii.gz) through nibabel (``medsynth[nifti]``; a volume gives its axial slices,
    all or the middle one, shown radiologically).

    image_size : None (all images must already share one size), an int (square) or (height,
        width): every image is resized with the engine's antialiased bilinear filter (as Pillow's
        resize(BILINEAR); aspect ratio not kept, as torchvision's Resize((h, w))).
    channels : None (3 if any image is colour, else 1), 1 (colour converted with ITU-R 601-2
        luma, as Pillow's convert("L")) or 3 (gray repeated). Alpha channels are dropped.
    on_error : "raise" (read everything, then raise one OSError naming every unreadable file and
        why) or "skip" (leave them out and warn with their count and names).
    window : (level, width) for DICOM, NIfTI and floating-point TIFF values (e.g. (-600, 1600),
        a lung window in HU); otherwise DICOM uses the file's own window, and the rest min-max.
    classes : the class folders to read, in label order (default: all, sorted).
    workers : threads decoding files (default: up to 4; decoders release the GIL).
    return_paths : also return the path of every image.

    Returns ``(X, y, class_names)`` (and ``paths``): X float32 in [0, 1], (n, H, W) for one
    channel or (n, H, W, 3); y int64.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
    if nifti_slices not in ("all", "middle"):
        raise ValueError(f"nifti_slices must be 'all' or 'middle', got {nifti_slices!r}")
    if window is not None:
        level, width = (float(v) for v in window)
        if not width > 0:
            raise ValueError(f"window width must be positive, got {width}")
        window = (level, width)
    size = None
    if image_size is not None:
        size = (int(image_size), int(image_size)) if np.ndim(image_size) == 0 else tuple(int(s) for s in image_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}")
    root = Path(fspath(path))
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist")
    class_names, files = _find_files(root, classes)
    if not files:
        raise ValueError(f"'{root}' holds no image files (PNG, JPEG, BMP, TIFF, DICOM, NIfTI) in its class folders")
    missing = {}
    for kind in sorted({kind for _, kind, _ in files}):
        try:
            _readers.require(kind)
        except _readers.MissingDependency as e:
            if on_error == "raise":
                raise
            missing[kind] = str(e)

    results = [None] * len(files)
    reporter = ProgressReporter(progress, f"reading {root.name}", unit="file")

    def read_range(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            file, kind, _ = files[i]
            if kind in missing:
                results[i] = (None, missing[kind])
                continue
            try:
                results[i] = (_readers.read(file, kind, window=window, nifti_slices=nifti_slices), None)
            except Exception as e:                    # any decoder failure names the file
                results[i] = (None, f"{type(e).__name__}: {e}")

    threads = max(1, int(workers) if workers else min(4, os.cpu_count() or 1))
    step = 512
    with ThreadPoolExecutor(max_workers=threads) as pool:
        done = 0
        for _ in pool.map(lambda lo: read_range(lo, min(len(files), lo + step)), range(0, len(files), step)):
            done = min(len(files), done + step)
            if progress:
                reporter(done, len(files), "{}")
    reporter.close()

    failures = [(file, why) for (file, _, _), (_, why) in zip(files, results) if why is not None]
    if failures:
        listing = "\n".join(f"  {file}: {why}" for file, why in failures)
        if on_error == "raise":
            raise OSError(f"{len(failures)} of {len(files)} files in '{root}' could not be read "
                          f"(pass on_error='skip' to leave them out):\n{listing}")
        warnings.warn(f"skipped {len(failures)} of {len(files)} files in '{root}' that could not be read:\n{listing}",
                      UserWarning, stacklevel=2)
    images, labels, paths = [], [], []
    for (file, _, label), (slices, _) in zip(files, results):
        for image in slices or ():
            images.append(image)
            labels.append(label)
            paths.append(file)
    if not images:
        raise ValueError(f"no image in '{root}' could be read")

    target = channels or (3 if any(im.shape[2] == 3 for im, _ in images) else 1)
    shapes = sorted({im.shape[:2] for im, _ in images})
    if size is None and len(shapes) > 1:
        raise ValueError(f"images in '{root}' have {len(shapes)} different sizes (e.g. {shapes[:3]}); "
                         f"pass image_size=... to resize them to one")
    out_size = size or shapes[0]
    x = np.empty((len(images),) + tuple(out_size) + (target,), dtype=np.float32)
    if len(shapes) == 1 and len({(im.dtype, im.shape[2], s) for im, s in images}) == 1 and images[0][0].shape[2] == target:
        # one size, one sample type: a single vectorised conversion
        first, scale = images[0]
        samples = np.stack([im for im, _ in images])
        np.divide(samples, np.float32(scale), out=x, casting="unsafe")
    else:
        for i, (im, scale) in enumerate(images):
            x[i] = _to_float(im, scale, target) if im.shape[:2] == tuple(out_size) else 0
    if shapes != [tuple(out_size)]:
        from .ops import resize
        for shape in shapes:
            if shape == tuple(out_size):
                continue
            members = [i for i, (im, _) in enumerate(images) if im.shape[:2] == shape]
            batch = np.stack([_to_float(images[i][0], images[i][1], target) for i in members])
            x[members] = np.clip(resize(batch, out_size), 0, 1)
    x = x[..., 0] if target == 1 else x
    y = np.asarray(labels, dtype=np.int64)
    x = np.ascontiguousarray(x)
    return (x, y, class_names, paths) if return_paths else (x, y, class_names)
