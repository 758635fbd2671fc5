"""Bring input volumes onto the grid and intensity scale a network was trained on.

The steps follow the bundle's ``preprocessing`` config in this order:

1. **stack** the contrasts as channels (they must share one voxel grid);
2. **reorient** to the config's axis code (``RAS``): axes are permuted and flipped, no
   interpolation, so an oblique acquisition stays oblique;
3. **resample** to ``target_spacing_mm`` (linear for images, nearest for labels) on a grid
   spanning exactly the input's field of view;
4. **normalise** intensities per channel (window / CT window + gamma / z-score of non-zero
   voxels / percentiles);
5. **crop** to the foreground bounding box plus a margin.

The result, :class:`PreparedImage`, remembers the affine of every step, so
:meth:`PreparedImage.input_to_network` maps input voxels to network-grid voxels and
the prediction lands back on the input grid. Resampling uses ``torch.nn.functional
.interpolate`` (multi-threaded, and the segmentation stack depends on torch anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from myoscan.errors import InputError
from myoscan.io import Volume, check_same_grid, require_3d
from myoscan.segment.config import IntensityConfig, PreprocessConfig

__all__ = [
    "CT_BODY_THRESHOLD_HU",
    "PreparedImage",
    "body_mask",
    "check_finite",
    "check_geometry",
    "foreground_box",
    "normalize_intensity",
    "prepare_image",
    "prepare_labels",
    "reorient",
    "resample_array",
]

#: Raw value above which a CT voxel counts as body when cropping (air is -1000 HU).
CT_BODY_THRESHOLD_HU = -500.0


@dataclass(frozen=True)
class PreparedImage:
    """Network input plus the geometry needed to map the prediction back.

    Attributes
    ----------
    array : (C, X, Y, Z) ndarray of float32
        Normalised channels on the network grid (reoriented, resampled, cropped).
    affine : (4, 4) ndarray
        Network-grid voxel -> RAS world (mm).
    input_affine : (4, 4) ndarray
        Affine of the input volumes.
    input_shape : tuple of 3 int
        Spatial shape of the input volumes.
    grid_shape : tuple of 3 int
        Spatial shape of the network grid before cropping.
    crop_start : tuple of 3 int
        Where the crop starts on the uncropped network grid.
    """

    array: npt.NDArray[np.float32]
    affine: npt.NDArray[np.float64]
    input_affine: npt.NDArray[np.float64]
    input_shape: tuple[int, int, int]
    grid_shape: tuple[int, int, int]
    crop_start: tuple[int, int, int]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape on the network grid."""
        return tuple(self.array.shape[1:])  # type: ignore[return-value]

    def input_to_network(self) -> tuple[tuple[int, ...], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per network axis: the input axis it runs along, and index scale and offset.

        Network-grid coordinate along axis ``a`` of input voxel ``g`` is
        ``scale[a] * g[axis[a]] + offset[a]``; reorientation and resampling keep
        the axes separable, so this is exact.
        """
        matrix = np.linalg.inv(self.affine) @ self.input_affine
        axes = tuple(int(np.argmax(np.abs(matrix[a, :3]))) for a in range(3))
        scale = np.array([matrix[a, axes[a]] for a in range(3)])
        off_axis = np.abs(matrix[:3, :3]).copy()
        off_axis[range(3), axes] = 0.0
        if sorted(axes) != [0, 1, 2] or off_axis.max() > 1e-6 * np.abs(scale).max():
            raise AssertionError("network grid is not axis-aligned with the input grid")  # internal bug
        return axes, scale, matrix[:3, 3].copy()  # type: ignore[return-value]


def check_geometry(volume: Volume) -> Volume:
    """Reject images a network cannot use: not 3D, no voxel spacing, degenerate affine.

    Raises
    ------
    InputError
        With the file name and what is wrong.
    """
    require_3d(volume)
    spacing = np.asarray(volume.spacing_mm)
    if not np.all(np.isfinite(volume.affine)) or np.any(spacing <= 1e-6):
        raise InputError(
            f"{volume.name}: the image has no valid voxel spacing (spacing {volume.spacing_mm} mm); "
            "write it with its real spacing (NIfTI pixdim / NRRD space directions)"
        )
    if abs(np.linalg.det(volume.affine[:3, :3])) < 1e-9 * np.prod(spacing):
        raise InputError(f"{volume.name}: the image affine is degenerate (axes not independent)")
    if min(volume.spatial_shape) < 1 or volume.array.size == 0:
        raise InputError(f"{volume.name}: the image is empty (shape {volume.shape})")
    return volume


def check_finite(volume: Volume) -> Volume:
    """Reject images holding NaN or infinite voxels.

    One such voxel makes the percentile/z-score normalisation NaN everywhere, and the
    network then labels the whole image background without any warning.

    Raises
    ------
    InputError
        With the file name and the number of non-finite voxels.

    Examples
    --------
    >>> from pathlib import Path
    >>> check_finite(Volume(np.array([[[0.0, np.nan]]]), np.eye(4), Path("x.nii.gz")))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    myoscan.errors.InputError: x.nii.gz: 1 voxel(s) are NaN or infinite; replace them ...
    """
    array = np.asarray(volume.array)
    if array.dtype.kind in "fc":
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            raise InputError(
                f"{volume.name}: {bad} voxel(s) are NaN or infinite; replace them (e.g. with the "
                "background value) before segmenting or training"
            )
    return volume


def reorient(array: np.ndarray, affine: npt.NDArray[np.float64], code: str) -> tuple[np.ndarray, np.ndarray]:
    """Permute/flip the first three axes of ``array`` to the axis code ``code`` (no interpolation).

    Returns
    -------
    ndarray, (4, 4) ndarray
        Reoriented array (a view where possible) and its affine.

    Examples
    --------
    >>> arr, aff = reorient(np.zeros((2, 3, 4)), np.diag([-1.0, 2.0, 3.0, 1.0]), "RAS")
    >>> arr.shape, np.diag(aff).tolist()
    ((2, 3, 4), [1.0, 2.0, 3.0, 1.0])
    """
    from nibabel.orientations import (
        apply_orientation,
        axcodes2ornt,
        inv_ornt_aff,
        io_orientation,
        ornt_transform,
    )

    transform = ornt_transform(io_orientation(affine), axcodes2ornt(tuple(code)))
    new_array = apply_orientation(array, transform)
    new_affine = affine @ inv_ornt_aff(transform, array.shape[:3])
    return new_array, new_affine


def resample_array(
    array: np.ndarray, shape: Sequence[int], *, order: int = 1,
) -> np.ndarray:
    """Resample the first three axes of ``array`` to ``shape`` over the same field of view.

    Output voxel ``j`` samples input coordinate ``(j + 0.5) * n / m - 0.5`` (voxel
    centres of two grids covering the same extent), linearly (``order=1``, images)
    or from the nearest voxel (``order=0``, label maps).

    Parameters
    ----------
    array : (X, Y, Z) or (C, X, Y, Z) ndarray
        Image (channels first when 4D).
    shape : 3 ints
        Output spatial shape.
    order : {0, 1}
        0 = nearest (keeps the dtype), 1 = linear (float32).

    Examples
    --------
    >>> resample_array(np.arange(4.0).reshape(4, 1, 1), (2, 1, 1)).ravel().tolist()
    [0.5, 2.5]
    """
    import torch
    import torch.nn.functional as F

    spatial = tuple(array.shape[-3:])
    if tuple(shape) == spatial:
        return array if order == 0 else array.astype(np.float32, copy=False)
    channels_first = array.ndim == 4
    data = array if channels_first else array[None]
    if order == 0:
        dtype = data.dtype
        source = torch.from_numpy(np.ascontiguousarray(data.astype(np.float32)))[None]
        out = F.interpolate(source, size=tuple(shape), mode="nearest-exact")[0].numpy()
        out = out.astype(dtype)
    else:
        source = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))[None]
        out = F.interpolate(source, size=tuple(shape), mode="trilinear", align_corners=False)[0].numpy()
    return out if channels_first else out[0]


def _grid_scaling(spatial: Sequence[int], new_shape: Sequence[int]) -> npt.NDArray[np.float64]:
    """4 x 4 map from the resampled grid's voxel indices to the original grid's."""
    step = np.asarray(spatial, float) / np.asarray(new_shape, float)
    matrix = np.diag([*step, 1.0])
    matrix[:3, 3] = 0.5 * step - 0.5
    return matrix


def normalize_intensity(channel: np.ndarray, config: IntensityConfig) -> npt.NDArray[np.float32]:
    """Normalise one channel as ``config`` says (see :class:`IntensityConfig`).

    Examples
    --------
    >>> normalize_intensity(np.array([0.0, 80.0, 265.0, 450.0, 900.0]),
    ...                     IntensityConfig(mode="window", window=(80, 450))).tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    """
    data = np.asarray(channel, dtype=np.float32)
    if config.mode == "none":
        return data
    if config.mode == "zscore":
        nonzero = data[data != 0]
        if nonzero.size == 0:
            return data.copy()
        mean, sd = float(nonzero.mean(dtype=np.float64)), float(nonzero.std(dtype=np.float64))
        out = np.where(data != 0, (data - mean) / (sd if sd > 0 else 1.0), 0.0).astype(np.float32)
        return out
    if config.mode == "percentile":
        nonzero = data[data != 0]
        low, high = np.percentile(nonzero, config.percentiles) if nonzero.size else (0.0, 1.0)
    else:
        low, high = config.window  # type: ignore[misc]
    width = float(high) - float(low)
    out = (data - np.float32(low)) / np.float32(width if width > 0 else 1.0)
    if config.clip or config.gamma != 1.0:
        np.clip(out, 0.0, 1.0, out=out)
    if config.gamma != 1.0:
        np.power(out, np.float32(config.gamma), out=out)
    return out


def body_mask(data: np.ndarray, threshold: float | None) -> npt.NDArray[np.bool_]:
    """Voxels of the body: any channel above ``threshold``, or above its Otsu threshold.

    Otsu's threshold (``skimage.filters.threshold_otsu``, on every other voxel in-plane)
    separates body from background in magnitude MRI, whose noise floor is above 0
    everywhere, so ``> 0`` would keep the whole field of view.

    Parameters
    ----------
    data : (C, X, Y, Z) ndarray
        Raw channels.
    threshold : float, optional
        Fixed threshold for all channels (e.g. -500 HU for CT); ``None`` = Otsu per channel.
    """
    if threshold is not None:
        return (data > threshold).any(axis=0)
    from skimage.filters import threshold_otsu

    mask = np.zeros(data.shape[1:], dtype=bool)
    for channel in data:
        sample = channel[::2, ::2]
        if np.ptp(sample) > 0:
            mask |= channel > threshold_otsu(sample)
    return mask


def foreground_box(
    mask: npt.NDArray[np.bool_], margin_vox: Sequence[int], *, min_fraction: float = 0.002,
) -> tuple[slice, slice, slice]:
    """Bounding box of ``mask`` grown by ``margin_vox`` (the whole grid when empty).

    Along each axis, positions holding fewer than ``min_fraction`` of the largest
    count of mask voxels are ignored, so a few stray voxels (noise spikes, artefacts)
    do not stretch the box.

    Examples
    --------
    >>> m = np.zeros((10, 10, 10), bool); m[4:6, 4:6, 4:6] = True
    >>> foreground_box(m, (1, 1, 0))
    (slice(3, 7, None), slice(3, 7, None), slice(4, 6, None))
    """
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)  # type: ignore[return-value]
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        counts = mask.sum(axis=other)
        hits = np.flatnonzero(counts >= max(1, min_fraction * counts.max()))
        low = max(0, int(hits[0]) - margin_vox[axis])
        box.append(slice(low, min(mask.shape[axis], int(hits[-1]) + 1 + margin_vox[axis])))
    return tuple(box)  # type: ignore[return-value]


def prepare_image(
    volumes: Sequence[Volume], config: PreprocessConfig, *, modality: str = "mri",
) -> PreparedImage:
    """Stack, reorient, resample, normalise and crop the input contrasts.

    Parameters
    ----------
    volumes : sequence of Volume
        One 3D volume per network input channel, in the config's contrast order,
        all on one voxel grid.
    config : PreprocessConfig
        The bundle's preprocessing settings.
    modality : {'mri', 'ct'}
        Picks the default foreground threshold (0 / -500 HU).

    Returns
    -------
    PreparedImage

    Raises
    ------
    InputError
        Not 3D, no spacing, NaN or infinite voxels.
    GeometryMismatchError
        Contrasts on different grids.
    """
    if not volumes:
        raise InputError("no input images given")
    reference = check_geometry(volumes[0])
    for other in volumes[1:]:
        check_same_grid(reference, check_geometry(other))
    for volume in volumes:
        check_finite(volume)
    stacked = np.stack([np.asarray(v.array) for v in volumes], axis=-1)  # (I, J, K, C)
    affine = reference.affine
    if config.orientation is not None:
        stacked, affine = reorient(stacked, affine, config.orientation)
    data = np.moveaxis(stacked, -1, 0)  # (C, X, Y, Z)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if config.target_spacing_mm is not None:
        target = [s if t is None else t for s, t in zip(spacing, config.target_spacing_mm, strict=True)]
        new_shape = tuple(
            max(1, int(round(n * s / t))) for n, s, t in zip(data.shape[1:], spacing, target, strict=True)
        )
        affine = affine @ _grid_scaling(data.shape[1:], new_shape)
        data = resample_array(data, new_shape, order=1)
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
    data = np.asarray(data, dtype=np.float32)
    grid_shape = tuple(data.shape[1:])
    normalised = np.stack([normalize_intensity(c, config.intensity) for c in data])
    start = (0, 0, 0)
    if config.crop_foreground:
        threshold = config.foreground_threshold
        if config.crop_source == "normalized":
            mask = (normalised > (0.0 if threshold is None else threshold)).any(axis=0)
        else:
            if threshold is None and modality == "ct":
                threshold = CT_BODY_THRESHOLD_HU
            mask = body_mask(data, threshold)
        if config.crop_margin_vox is not None:
            margin = (config.crop_margin_vox,) * 3
        else:
            margin = tuple(int(np.ceil(config.crop_margin_mm / s)) for s in spacing)
        box = foreground_box(mask, margin, min_fraction=0.0 if config.crop_source == "normalized" else 0.002)
        start = tuple(b.start for b in box)
        normalised = np.ascontiguousarray(normalised[(slice(None), *box)])
        shift = np.eye(4)
        shift[:3, 3] = start
        affine = affine @ shift
    return PreparedImage(normalised, affine, reference.affine.copy(), reference.spatial_shape,
                         grid_shape, start)  # type: ignore[arg-type]


def prepare_labels(labels: Volume, prepared: PreparedImage, config: PreprocessConfig) -> np.ndarray:
    """Put a reference label map on the network grid of ``prepared`` (nearest neighbour).

    Used for training data and to compare predictions in the network's own grid.

    Raises
    ------
    GeometryMismatchError
        If ``labels`` is not on the input grid ``prepared`` came from.
    """
    grid = Volume(np.zeros(prepared.input_shape, np.uint8), prepared.input_affine, labels.path)
    check_same_grid(grid, labels)
    array = np.asarray(labels.array)
    if config.orientation is not None:
        array, _ = reorient(array, labels.affine, config.orientation)
    array = resample_array(array, prepared.grid_shape, order=0)
    box = tuple(slice(s, s + n) for s, n in zip(prepared.crop_start, prepared.shape, strict=True))
    return np.ascontiguousarray(array[box])
