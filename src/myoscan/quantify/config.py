"""Paper constants and :class:`QuantifyConfig`, the settings of every quantify step.

Defaults are the published values; each cites the seed paper (``../shared/seeds``) or the
method it comes from. A config is plain data: build it in Python, load it from TOML/JSON
with :meth:`QuantifyConfig.from_file`, override single fields with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from myoscan._typing import PathLike
from myoscan.errors import InputError

__all__ = [
    "CLUSTER_MAX_ITER",
    "CLUSTER_N_INIT",
    "CLUSTER_TOL",
    "CT_ADIPOSE_HU",
    "CT_MUSCLE_HU",
    "EROSION_ITERATIONS",
    "FF_VIABLE_BELOW_PCT",
    "MUSCLE_DENSITY_G_ML",
    "PA_ANTERIOR_GROUPS",
    "PA_POSTERIOR_GROUPS",
    "QuantifyConfig",
]

#: Erosion of each mask before IMF: one iteration of a 3x3x3 kernel (seed 000).
EROSION_ITERATIONS = 1
#: Lean skeletal muscle attenuation range, inclusive, in HU (seed 003, after Aubrey et al. 2014).
CT_MUSCLE_HU = (-29.0, 150.0)
#: Adipose tissue attenuation range, inclusive, in HU (issue 2; the usual -190..-30 HU IMAT window).
CT_ADIPOSE_HU = (-190.0, -30.0)
#: Skeletal muscle density for volume -> mass, g/mL (seed 003: 1.06 kg/L).
MUSCLE_DENSITY_G_ML = 1.06
#: AMRA muscle fat infiltration: mean fat fraction of the voxels below this FF, in %.
FF_VIABLE_BELOW_PCT = 50.0
#: MuscleMap ``mm_extract_metrics`` clustering settings (KMeans/GaussianMixture).
CLUSTER_N_INIT = 20
CLUSTER_MAX_ITER = 1000
CLUSTER_TOL = 1e-3
#: Posterior / anterior ratio of seed 001: hamstrings over quadriceps + sartorius
#: (catalog groups of the ``thigh`` scheme).
PA_POSTERIOR_GROUPS = ("posterior",)
PA_ANTERIOR_GROUPS = ("anterior",)

ClusterMethod = Literal["gmm", "kmeans"]
FatFractionUnit = Literal["auto", "fraction", "percent", "permille"]


@dataclass(frozen=True)
class QuantifyConfig:
    """Settings of :func:`myoscan.quantify.quantify` and :func:`regional_indices`.

    Parameters
    ----------
    erosion_iterations : int
        Iterations of a 3x3x3 (26-neighbour) erosion applied per label before ``imf_pct``
        (seed 000: 1). 0 disables erosion.
    erode_at_image_border : bool
        True (default, like :func:`scipy.ndimage.binary_erosion` with ``border_value=0``):
        voxels beyond the image border (or beyond a slab face) count as outside, so a mask
        cut by the field of view is eroded there too. False: the border counts as inside.
    ct_muscle_hu, ct_adipose_hu : (float, float)
        Inclusive HU ranges of lean muscle (seed 003) and adipose tissue (IMAT).
    muscle_density_g_ml : float
        Density for ``mass_g`` (seed 003).
    ff_viable_below_pct : float
        Upper FF limit (exclusive) of the AMRA ``ff_mean_below50_pct`` average.
    fat_fraction_unit : {'auto', 'fraction', 'percent', 'permille'}
        Unit of a fat-fraction map; ``auto`` looks at the top (99.9th percentile) of the whole
        map, which holds fat near 100 %: <= 1.5 is a fraction, <= 150 percent, <= 1500 per
        mille (Siemens stores FF x 10). Set the unit when the map has no fat in view.
    cluster_methods : tuple of {'gmm', 'kmeans'}
        Clustering methods for T1/T2-weighted images (MuscleMap ``mm_extract_metrics``).
    cluster_components : {2, 3}
        Number of intensity classes (muscle, [undefined,] fat).
    cluster_n_init, cluster_max_iter, cluster_tol : int, int, float
        scikit-learn fit settings (MuscleMap's values).
    cluster_max_voxels : int
        Fit on a seeded random subset of at most this many voxels of a label (all voxels
        are then classified); 0 fits on every voxel.
    seed : int
        Random seed of the clustering.
    csa_slice_index : int, optional
        Slice index (along the slice axis, of the full image) for ``csa_cm2_at_slice``.
    csa_world_z_mm : float, optional
        Alternatively, the world z (RAS, mm) whose nearest slice gives ``csa_cm2_at_slice``.
    slice_axis : {0, 1, 2}, optional
        Voxel axis across slices; default: the axis closest to world z (axial slices).
    tmv_groups : tuple of str, optional
        Catalog groups summed into ``tmv_cm3``; default: every label of tissue ``muscle``.
    pa_posterior_groups, pa_anterior_groups : tuple of str
        Groups in the numerator and denominator of ``pa_ratio``.

    Examples
    --------
    >>> QuantifyConfig().ct_muscle_hu
    (-29.0, 150.0)
    >>> QuantifyConfig(erosion_iterations=2).erosion_iterations
    2
    """

    erosion_iterations: int = EROSION_ITERATIONS
    erode_at_image_border: bool = True
    ct_muscle_hu: tuple[float, float] = CT_MUSCLE_HU
    ct_adipose_hu: tuple[float, float] = CT_ADIPOSE_HU
    muscle_density_g_ml: float = MUSCLE_DENSITY_G_ML
    ff_viable_below_pct: float = FF_VIABLE_BELOW_PCT
    fat_fraction_unit: FatFractionUnit = "auto"
    cluster_methods: tuple[ClusterMethod, ...] = ("gmm", "kmeans")
    cluster_components: int = 2
    cluster_n_init: int = CLUSTER_N_INIT
    cluster_max_iter: int = CLUSTER_MAX_ITER
    cluster_tol: float = CLUSTER_TOL
    cluster_max_voxels: int = 200_000
    seed: int = 0
    csa_slice_index: int | None = None
    csa_world_z_mm: float | None = None
    slice_axis: int | None = None
    tmv_groups: tuple[str, ...] | None = None
    pa_posterior_groups: tuple[str, ...] = PA_POSTERIOR_GROUPS
    pa_anterior_groups: tuple[str, ...] = PA_ANTERIOR_GROUPS

    def __post_init__(self) -> None:
        for name in ("ct_muscle_hu", "ct_adipose_hu"):
            low, high = getattr(self, name)
            if not low <= high:
                raise InputError(f"QuantifyConfig.{name}: expected (low, high) with low <= high, got "
                                 f"{getattr(self, name)}")
        checks = {
            "erosion_iterations": self.erosion_iterations >= 0,
            "cluster_components": self.cluster_components in (2, 3),
            "cluster_n_init": self.cluster_n_init >= 1,
            "cluster_max_iter": self.cluster_max_iter >= 1,
            "cluster_max_voxels": self.cluster_max_voxels >= 0,
            "muscle_density_g_ml": self.muscle_density_g_ml > 0,
            "fat_fraction_unit": self.fat_fraction_unit in ("auto", "fraction", "percent", "permille"),
            "cluster_methods": set(self.cluster_methods) <= {"gmm", "kmeans"},
            "slice_axis": self.slice_axis in (None, 0, 1, 2),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(
                f"QuantifyConfig: invalid {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}; "
                "see the QuantifyConfig docstring for the allowed values"
            )
        if self.csa_slice_index is not None and self.csa_world_z_mm is not None:
            raise InputError("QuantifyConfig: give csa_slice_index or csa_world_z_mm, not both")

    @classmethod
    def from_file(cls, path: PathLike, **overrides: Any) -> QuantifyConfig:
        r"""Read a config from a TOML or JSON file (top level or a ``[quantify]`` table).

        Parameters
        ----------
        path : str or os.PathLike
            ``.toml`` or ``.json`` file; keys are field names of this class.
        **overrides
            Fields to set after reading (e.g. from command-line flags).

        Returns
        -------
        QuantifyConfig

        Raises
        ------
        InputError
            Missing or unreadable file, unknown keys, invalid values.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "q.toml"
        >>> _ = p.write_text("[quantify]\nerosion_iterations = 2\n")
        >>> QuantifyConfig.from_file(p).erosion_iterations
        2
        """
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
            data = tomllib.loads(text) if source.suffix.lower() == ".toml" else json.loads(text)
        except FileNotFoundError:
            raise InputError(f"{source}: no such config file; check the path") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{source.name}: cannot read config ({exc}); expected TOML or JSON") from exc
        if isinstance(data, dict) and isinstance(data.get("quantify"), dict):
            data = data["quantify"]
        if not isinstance(data, dict):
            raise InputError(f"{source.name}: expected a table of QuantifyConfig fields")
        return cls.from_dict({**data, **overrides}, source=source.name)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> QuantifyConfig:
        """Build a config from plain values (lists become tuples); unknown keys are an error.

        Examples
        --------
        >>> QuantifyConfig.from_dict({"ct_muscle_hu": [-30, 150]}).ct_muscle_hu
        (-30.0, 150.0)
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise InputError(f"{source}: unknown QuantifyConfig field(s) {', '.join(unknown)}; "
                             f"known: {', '.join(fields)}")
        return cls(**{key: _checked_value(key, value, source) for key, value in data.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain-value form (for JSON provenance)."""
        return dataclasses.asdict(self)


_INT_FIELDS = ("erosion_iterations", "cluster_components", "cluster_n_init", "cluster_max_iter",
               "cluster_max_voxels", "seed", "csa_slice_index", "slice_axis")
_FLOAT_FIELDS = ("muscle_density_g_ml", "ff_viable_below_pct", "cluster_tol", "csa_world_z_mm")
_NAME_TUPLE_FIELDS = ("cluster_methods", "tmv_groups", "pa_posterior_groups", "pa_anterior_groups")
_OPTIONAL_FIELDS = ("csa_slice_index", "csa_world_z_mm", "slice_axis", "tmv_groups")


def _checked_value(key: str, value: Any, source: str) -> Any:
    """Return a config value from a file as the field's type; InputError naming the field otherwise."""
    def bad(expected: str) -> InputError:
        return InputError(f"{source}: QuantifyConfig field {key} = {value!r} must be {expected}")

    if value is None and key in _OPTIONAL_FIELDS:
        return None
    if key in ("ct_muscle_hu", "ct_adipose_hu"):
        if not isinstance(value, list | tuple) or len(value) != 2 or not all(_is_number(v) for v in value):
            raise bad("two numbers [low, high] in HU")
        return tuple(float(v) for v in value)
    if key in _NAME_TUPLE_FIELDS:
        names = (value,) if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not all(isinstance(v, str) for v in names):
            raise bad("a name or a list of names")
        return tuple(names)
    if key in _INT_FIELDS and not (_is_number(value) and float(value).is_integer()):
        raise bad("a whole number")
    if key in _INT_FIELDS:
        return int(value)
    if key in _FLOAT_FIELDS and not _is_number(value):
        raise bad("a number")
    if key == "erode_at_image_border" and not isinstance(value, bool):
        raise bad("true or false")
    if key == "fat_fraction_unit" and not isinstance(value, str):
        raise bad("one of auto, fraction, percent, permille")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
