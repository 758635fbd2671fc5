"""Segmentation networks built from a bundle's ``architecture`` config (MONAI).

Every architecture is a MONAI network; this module only maps the names and
defaults of the papers onto MONAI constructors and checks the parameters, so a
bundle's ``config.json`` fully determines the network.

=============  ==================================  ==========================================
name           MONAI class                         defaults from
=============  ==================================  ==========================================
``unet2d``     ``UNet(spatial_dims=2)``            seed 000: channels 64-1024, strides 2 x 4,
                                                   2 residual units, instance norm, LeakyReLU
``resunet2d``  ``UNet(spatial_dims=2)``            seed 003: 4 encoding / 3 decoding blocks,
                                                   1-4 residual units, batch norm, PReLU
``unet3d``     ``UNet(spatial_dims=3)``            generic residual 3D U-Net
``unetr``      ``UNETR``                           seeds 001/004: 96^3 patches of 16^3, 12
                                                   layers, hidden 768, instance norm
``vnet``       ``VNet``                            seed 002 (cervical): stands in for the dense
                                                   V-Net, see docs/segment.md
=============  ==================================  ==========================================

``in_channels`` and ``out_channels`` come from ``params`` or from keyword
arguments; :func:`network_from_config` derives them from a full bundle config
(number of input contrasts, number of output labels + background).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from myoscan.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "build_network",
    "input_multiple",
    "network_from_config",
    "spatial_dims_of",
]


@dataclass(frozen=True)
class Architecture:
    """A registered network family.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2 = run slice by slice, 3 = run on 3D patches.
    defaults : mapping
        Parameters used when the config leaves them out (from the seed papers).
    build : callable
        ``build(in_channels, out_channels, **params) -> torch.nn.Module``.
    description : str
        One line for ``myoscan models info``.
    """

    spatial_dims: int
    defaults: Mapping[str, Any]
    build: Callable[..., Any]
    description: str


def _unet(spatial_dims: int) -> Callable[..., Any]:
    def build(in_channels: int, out_channels: int, *, channels: Sequence[int], strides: Sequence[int],
              num_res_units: int, norm: str, act: str, dropout: float = 0.0,
              kernel_size: int = 3, up_kernel_size: int = 3) -> Any:
        from monai.networks.nets import UNet

        if len(strides) != len(channels) - 1:
            raise ModelError(
                f"unet: expected len(strides) = len(channels) - 1, got {len(strides)} strides "
                f"for {len(channels)} channels"
            )
        return UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                    channels=tuple(channels), strides=tuple(strides), num_res_units=num_res_units,
                    norm=norm, act=act, dropout=dropout, kernel_size=kernel_size,
                    up_kernel_size=up_kernel_size)

    return build


def _resunet2d(in_channels: int, out_channels: int, **params: Any) -> Any:
    units = params.get("num_res_units")
    if not isinstance(units, int) or not 1 <= units <= 4:
        raise ModelError(f"resunet2d: num_res_units must be 1-4 (seed 003), got {units!r}")
    return _unet(2)(in_channels, out_channels, **params)


def _unetr(in_channels: int, out_channels: int, *, img_size: Sequence[int], feature_size: int,
           hidden_size: int, mlp_dim: int, num_heads: int, norm_name: str, res_block: bool,
           dropout_rate: float = 0.0, proj_type: str = "conv") -> Any:
    from monai.networks.nets import UNETR

    if hidden_size % num_heads:
        raise ModelError(f"unetr: hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
    if any(int(s) % 16 for s in img_size):
        raise ModelError(f"unetr: img_size {list(img_size)} must be multiples of the 16-voxel patch")
    return UNETR(in_channels=in_channels, out_channels=out_channels, img_size=tuple(img_size),
                 feature_size=feature_size, hidden_size=hidden_size, mlp_dim=mlp_dim, num_heads=num_heads,
                 proj_type=proj_type, norm_name=norm_name, res_block=res_block,
                 dropout_rate=dropout_rate, spatial_dims=3)


def _vnet(in_channels: int, out_channels: int, *, act: str, dropout_prob_down: float,
          dropout_prob_up: Sequence[float], dropout_dim: int = 3) -> Any:
    from monai.networks.nets import VNet

    if 16 % in_channels:
        raise ModelError(f"vnet: in_channels must divide 16 (MONAI VNet), got {in_channels}")
    return VNet(spatial_dims=3, in_channels=in_channels, out_channels=out_channels, act=act,
                dropout_prob_down=dropout_prob_down, dropout_prob_up=tuple(dropout_prob_up),
                dropout_dim=dropout_dim)


#: Registered architectures; ``architecture.name`` in a bundle config is a key of this dict.
ARCHITECTURES: dict[str, Architecture] = {
    "unet2d": Architecture(
        2,
        # seed 000 (the paper prints 1026 for the last width, a typo for 1024)
        {"channels": [64, 128, 256, 512, 1024], "strides": [2, 2, 2, 2], "num_res_units": 2,
         "norm": "instance", "act": "leakyrelu", "dropout": 0.0},
        _unet(2),
        "2D U-Net, slice-wise (seed 000; MONAI UNet)",
    ),
    "resunet2d": Architecture(
        2,
        # seed 003: 4 encoding + 3 decoding blocks, 1-4 residual units (4 was best);
        # widths are not given in the paper, these are MONAI's tutorial widths.
        {"channels": [32, 64, 128, 256], "strides": [2, 2, 2], "num_res_units": 4,
         "norm": "batch", "act": "prelu", "dropout": 0.0},
        _resunet2d,
        "2D residual U-Net, slice-wise (seed 003; MONAI UNet, batch norm, PReLU)",
    ),
    "unet3d": Architecture(
        3,
        {"channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 2,
         "norm": "instance", "act": "leakyrelu", "dropout": 0.0},
        _unet(3),
        "3D residual U-Net on patches (MONAI UNet)",
    ),
    "unetr": Architecture(
        3,
        # seeds 001/004: 96^3 input, 16^3 patches, 12 layers of hidden size 768, instance norm
        {"img_size": [96, 96, 96], "feature_size": 16, "hidden_size": 768, "mlp_dim": 3072,
         "num_heads": 12, "norm_name": "instance", "res_block": True, "dropout_rate": 0.0},
        _unetr,
        "UNETR transformer U-Net on 3D patches (seeds 001/004; MONAI UNETR)",
    ),
    "vnet": Architecture(
        3,
        # seed 002: dense V-Net (NiftyNet) with ReLU and batch-wise spatial dropout; MONAI's VNet
        # (same V-Net down/up-sampling path, Dropout3d) is the closest MONAI network, docs/segment.md.
        {"act": "relu", "dropout_prob_down": 0.5, "dropout_prob_up": [0.5, 0.5], "dropout_dim": 3},
        _vnet,
        "3D V-Net on patches, stand-in for seed 002's dense V-Net (MONAI VNet)",
    ),
}


def _lookup(name: Any) -> Architecture:
    if name not in ARCHITECTURES:
        raise ModelError(
            f"unknown architecture {name!r}; expected one of {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[name]


def spatial_dims_of(architecture: Mapping[str, Any]) -> int:
    """Return 2 for slice-wise architectures and 3 for patch-based ones.

    Examples
    --------
    >>> spatial_dims_of({"name": "unet2d"})
    2
    """
    return _lookup(architecture.get("name")).spatial_dims


def input_multiple(architecture: Mapping[str, Any]) -> int:
    """Every spatial input size must be a multiple of this number.

    For U-Nets the product of the strides (so skip connections line up); 16 for
    VNet and for UNETR's patch embedding.

    Examples
    --------
    >>> input_multiple({"name": "unet2d", "params": {"strides": [2, 2, 2]}})
    8
    """
    name = architecture.get("name")
    arch = _lookup(name)
    params = {**arch.defaults, **(architecture.get("params") or {})}
    if "strides" in params:
        return int(math.prod(int(s) for s in params["strides"]))
    return 16


def build_network(
    architecture: Mapping[str, Any],
    *,
    in_channels: int | None = None,
    out_channels: int | None = None,
) -> torch.nn.Module:
    """Build the network an ``architecture`` config describes.

    Parameters
    ----------
    architecture : mapping
        ``{"name": ..., "params": {...}}`` as in a bundle's ``config.json``, or a whole
        bundle config (then channels come from its inputs and labels).
    in_channels, out_channels : int, optional
        Override or supply ``params['in_channels']`` / ``params['out_channels']``.

    Returns
    -------
    torch.nn.Module
        A freshly initialised network (call ``torch.manual_seed`` first for reproducible weights).

    Raises
    ------
    ModelError
        Unknown architecture name, unknown or invalid parameters, missing channel counts.

    Examples
    --------
    >>> net = build_network({"name": "unet2d", "params": {"channels": [4, 8], "strides": [2],
    ...                      "in_channels": 1, "out_channels": 3}})
    >>> type(net).__name__
    'UNet'
    """
    if "architecture" in architecture:
        return network_from_config(architecture)
    arch = _lookup(architecture.get("name"))
    params = {**arch.defaults, **(architecture.get("params") or {})}
    n_in = in_channels if in_channels is not None else params.pop("in_channels", None)
    n_out = out_channels if out_channels is not None else params.pop("out_channels", None)
    params.pop("in_channels", None)
    params.pop("out_channels", None)
    for what, value in (("in_channels", n_in), ("out_channels", n_out)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ModelError(
                f"architecture {architecture.get('name')!r}: {what} must be a whole number >= 1, "
                f"got {value!r}; set it in architecture.params"
            )
    try:
        return arch.build(n_in, n_out, **params)
    except TypeError as exc:  # unexpected or missing keyword
        raise ModelError(f"architecture {architecture.get('name')!r}: invalid params ({exc})") from exc
    except (ValueError, AssertionError) as exc:  # MONAI validates some parameters itself
        raise ModelError(f"architecture {architecture.get('name')!r}: {exc}") from exc


def network_from_config(config: Mapping[str, Any]) -> torch.nn.Module:
    """Build the network of a full bundle config.

    ``in_channels`` defaults to the number of ``inputs.contrasts`` and ``out_channels``
    to ``1 + max(labels.ids)`` (background is channel 0).

    Raises
    ------
    ModelError
        Missing ``architecture``, or channel counts that contradict the inputs / labels.
    """
    from myoscan.segment.config import channel_counts

    n_in, n_out = channel_counts(config)
    return build_network(config["architecture"], in_channels=n_in, out_channels=n_out)
