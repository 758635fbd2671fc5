"""BIDS file names: entities and suffix (shared by the pipeline and the training data finder)."""

from __future__ import annotations

import re

__all__ = ["IMAGE_SUFFIXES", "case_key", "parse_bids_name"]

IMAGE_SUFFIXES = (".nii.gz", ".nii")
_ENTITY = re.compile(r"^(?P<key>[a-zA-Z]+)-(?P<value>[a-zA-Z0-9]+)$")


def parse_bids_name(name: str, *, lenient: bool = False) -> tuple[dict[str, str], str] | None:
    """Split a BIDS image file name into its entities and suffix.

    Parameters
    ----------
    name : str
        File name such as ``sub-01_ses-2_chunk-3_water.nii.gz``.
    lenient : bool
        Skip tokens that are not ``key-value`` (MuscleMap names label maps
        ``sub-01_water_dseg.nii.gz``) instead of rejecting the name.

    Returns
    -------
    tuple of (dict, str) or None
        Entities and suffix; ``None`` if the name is not a BIDS image name with a subject.

    Examples
    --------
    >>> parse_bids_name("sub-01_ses-2_chunk-3_water.nii.gz")
    ({'sub': '01', 'ses': '2', 'chunk': '3'}, 'water')
    >>> parse_bids_name("sub-01_water_dseg.nii.gz") is None
    True
    >>> parse_bids_name("sub-01_water_dseg.nii.gz", lenient=True)
    ({'sub': '01'}, 'dseg')
    """
    stem = next((name[: -len(s)] for s in IMAGE_SUFFIXES if name.endswith(s)), None)
    if stem is None:
        return None
    *tokens, suffix = stem.split("_")
    entities: dict[str, str] = {}
    for token in tokens:
        match = _ENTITY.match(token)
        if match is None:
            if lenient:
                continue
            return None
        entities[match["key"]] = match["value"]
    return (entities, suffix) if "sub" in entities else None


def case_key(entities: dict[str, str]) -> tuple[str, str | None]:
    """``('sub-01', 'ses-2')`` (or ``('sub-01', None)``) from parsed entities.

    Examples
    --------
    >>> case_key({"sub": "01", "ses": "2"})
    ('sub-01', 'ses-2')
    """
    return f"sub-{entities['sub']}", (f"ses-{entities['ses']}" if "ses" in entities else None)
