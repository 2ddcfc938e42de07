"""A loaded case: every modality on one RAS+ grid, plus where it came from and what was checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import labels as label_conv
from .nifti import ReferenceGrid, write_on_grid


@dataclass
class Check:
    """One validation step and its outcome, as ``entrust info`` prints it."""

    subject: str  #: the file (or case) checked
    name: str  #: what was checked, e.g. "finite values"
    ok: bool
    detail: str = ""


@dataclass
class Case:
    """One multimodal case in memory.

    ``images`` hold raw intensities (float32) in RAS+ canonical voxel order on the reference grid;
    the model's normalised inputs come from :func:`napari_entrust.inference.normalize.normalize_case`.
    ``labels`` use the internal BraTS 2021 convention (0/1/2/4).
    """

    name: str
    images: dict[str, np.ndarray]
    grid: ReferenceGrid
    labels: np.ndarray | None = None
    layout: str = "explicit"
    sources: dict[str, str] = field(default_factory=dict)
    label_source: str | None = None
    label_convention: str | None = None
    resampled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    #: per modality (and "labels"): geometry of the source file as stored (shape, spacing, orientation, codes)
    file_geometry: dict[str, dict] = field(default_factory=dict)
    reference_modality: str = ""  #: the modality whose grid the case is on
    #: for a DICOM study: each modality's series files in slice order (what its provenance hashes)
    dicom_series: dict[str, list[str]] = field(default_factory=dict)
    dicom_study: str = ""  #: for a DICOM study: the folder it was read from

    @property
    def dicom_reference(self) -> list[str]:
        """For a DICOM study: the reference series' files in slice order (what a DICOM-SEG references)."""
        return self.dicom_series.get(self.reference_modality, [])

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.images)

    @property
    def affine(self) -> np.ndarray:
        """RAS+ affine of the arrays held in memory (what napari layers use)."""
        return self.grid.canonical_affine

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.grid.canonical_shape

    @property
    def spacing(self) -> np.ndarray:
        return self.grid.spacing

    def regions(self) -> np.ndarray | None:
        """Ground-truth WT/TC/ET channels, or None without labels."""
        return None if self.labels is None else label_conv.to_regions(self.labels)

    def write(
        self,
        canonical: np.ndarray,
        path: str | Path,
        *,
        overwrite: bool = False,
        dtype=None,
        description: str = "",
        scaled: bool = False,
    ) -> Path:
        """Write an array held on this case's grid as NIfTI that overlays the reference input
        (``scaled``: as integers with a slope, see :meth:`~.nifti.ReferenceGrid.image`)."""
        return write_on_grid(
            canonical, self.grid, path, overwrite=overwrite, dtype=dtype, description=description, scaled=scaled
        )

    @classmethod
    def from_arrays(
        cls,
        images: dict[str, np.ndarray],
        affine: np.ndarray,
        *,
        name: str = "case",
        labels: np.ndarray | None = None,
        layout: str = "in-memory",
    ) -> Case:
        """Wrap RAS+ arrays made in memory (e.g. the phantom) as a case on a grid with ``affine``."""
        first = next(iter(images.values()))
        grid = ReferenceGrid.from_affine(name, first.shape, affine)
        if grid.canonical_shape != tuple(first.shape) or not np.allclose(grid.canonical_affine, affine):
            raise ValueError("from_arrays expects arrays in RAS+ canonical order")
        return cls(
            name,
            {m: np.asarray(v, dtype=np.float32) for m, v in images.items()},
            grid,
            labels,
            layout,
            sources={m: "(in memory)" for m in images},
        )
