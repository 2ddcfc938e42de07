"""The region table: uncertain regions of the TrustMap, ranked, with why; selecting one goes there."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFormLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...io.modalities import DISPLAY_NAMES
from ...io.nifti import ReferenceGrid
from ...outputs.catalog import BY_KEY
from ...review.regions import DEFAULT_THRESHOLD, UncertainRegion, find_uncertain_regions
from ..layer_updates import set_layer
from ..qt_parts import guarded
from .session import ReviewSession

COLUMNS = ("#", "size (mL)", "mean TrustMap", "why", "reviewed")
HIGHLIGHT = "review region"


def _voxel_ml(mask) -> float:
    """The mask's voxel volume: from its source grid, else from its napari scale."""
    grid = mask.metadata.get("entrust_grid")
    if grid:
        return ReferenceGrid.from_dict(grid).voxel_volume_ml
    return float(np.prod(np.abs(mask.scale[-3:]))) / 1000


def same_place(old: UncertainRegion | None, regions: list[UncertainRegion], shape) -> int | None:
    """The row of the new region that overlaps ``old`` most (None without overlap): a new search
    renumbers the regions, and the user's selection should stay where it was."""
    if old is None or not regions:
        return None
    before = old.full_mask(shape)
    overlaps = [int(before[r.bbox][r.mask].sum()) for r in regions]
    best = int(np.argmax(overlaps))
    return best if overlaps[best] > 0 else None


def zoom_to(viewer, lo: np.ndarray, hi: np.ndarray, centre: tuple) -> None:
    """Centre the view on a box (``lo``/``hi``: world mm on the last three axes) and zoom so that it
    fills about a third of the view, at most 8× the whole-data view (a 0.1 mL region would
    otherwise be a few pixels)."""
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    ndim = viewer.dims.ndim
    shown = [a for a in viewer.dims.displayed if a >= ndim - 3]
    viewer.reset_view()  # fits the whole data: the zoom below is relative to that
    world = np.asarray(viewer.layers.extent.world)
    data_size = np.abs(world[1, shown] - world[0, shown])
    box = np.maximum(np.abs(hi - lo)[[a - (ndim - 3) for a in shown]], 1.0)
    camera.zoom = camera.zoom * float(np.clip(np.min(data_size / (3 * box)), 1.0, 8.0))
    camera.center = centre


class RegionsPanel(QWidget):
    """Threshold, "Find uncertain regions" and the table of regions."""

    def __init__(self, session: ReviewSession):
        super().__init__()
        self.session = session
        self.threshold = QDoubleSpinBox(minimum=0.05, maximum=0.95, singleStep=0.05, value=DEFAULT_THRESHOLD)
        self.threshold.setToolTip("TrustMap value above which voxels form an uncertain region (0-1)")
        self.find_button = QPushButton("Find uncertain regions")
        self.find_button.setToolTip("list the uncertain regions, most uncertain first; Shift-N selects the next")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        form = QFormLayout()
        form.addRow("TrustMap threshold", self.threshold)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.find_button)
        layout.addWidget(self.table)
        self.find_button.clicked.connect(self.find_regions)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        session.on_edit.append(self.fill_table)

    def set_status(self, text: str) -> None:
        self.session.set_status(text)

    @guarded
    def find_regions(self, *_args) -> list[UncertainRegion]:
        """Threshold the TrustMap, rank the connected regions, fill the table."""
        s = self.session
        mask = s.mask()
        for key in ("trustmap", "conflict"):
            if s.output_layer(key) is None:
                raise ValueError(f"the {BY_KEY[key].layer_name()} layer is missing: run EnTrust again")
        trust, conflict = s.output_layer("trustmap"), s.output_layer("conflict")
        s.regions = find_uncertain_regions(
            np.asarray(trust.data),
            voxel_ml=_voxel_ml(mask),
            weights=s.maps_by_modality("weights"),
            specific=s.maps_by_modality("specific"),
            conflict=np.asarray(conflict.data),
            threshold=self.threshold.value(),
        )
        previous, s.selected = s.selected, None
        self.table.clearSelection()
        self.fill_table()
        row = same_place(previous, s.regions, mask.data.shape)
        if row is not None:  # the region that was selected, found again where it was (numbers change)
            self.select(row)
        elif HIGHLIGHT in s.viewer.layers:  # no stale outline of a region that is gone; hidden, as
            s.viewer.layers[HIGHLIGHT].visible = False  # napari's layer removal runs a 0.5 s gc.collect()
        score = mask.metadata.get("entrust_summary", {}).get("case_score", {}).get("score", float("nan"))
        s.set_status(f"{len(s.regions)} regions above {self.threshold.value():.2f} (case score {score:.3f})")
        for listener in s.on_regions:
            listener()
        return s.regions

    def fill_table(self) -> None:
        regions = self.session.regions
        state = self.session.state() if regions else None
        decided = state.decided if regions else None
        self.table.setRowCount(len(regions))
        for row, r in enumerate(regions):
            reviewed = "yes" if state.reviewed(r, decided) else "no"
            values = (str(r.number), f"{r.size_ml:.2f}", f"{r.mean_trust:.2f}", r.why, reviewed)
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                if col == 3:
                    item.setToolTip(", ".join(f"{DISPLAY_NAMES.get(m, m)} {v:.0%}" for m, v in r.pattern.items()))
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()

    def select(self, row: int) -> None:
        self.table.selectRow(row)

    def select_next(self) -> None:
        """The next region in the table (the first after the last), for the Shift-N key."""
        if self.session.regions:
            rows = self.table.selectionModel().selectedRows()
            self.select((rows[0].row() + 1) % len(self.session.regions) if rows else 0)

    def _selection_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        self.session.selected = self.session.regions[rows[0].row()] if rows else None
        if self.session.selected is not None:
            self.go_to(self.session.selected)

    @guarded
    def go_to(self, region: UncertainRegion) -> None:
        """Move the dims slider and the camera to the region and outline it."""
        viewer, mask = self.session.viewer, self.session.mask()
        world = np.asarray(mask.data_to_world(region.centre), dtype=float)
        ndim = viewer.dims.ndim
        viewer.dims.set_point(list(range(ndim - 3, ndim)), world[-3:])
        ends = [mask.data_to_world([b.start for b in region.bbox]), mask.data_to_world([b.stop for b in region.bbox])]
        corners = np.array(ends, dtype=float)[:, -3:]
        centre = tuple(world[-3:][[a - (ndim - 3) for a in viewer.dims.displayed if a >= ndim - 3]])
        zoom_to(viewer, corners.min(0), corners.max(0), centre)
        # the outline covers the region's box only (grown, so the contour closes), placed there: a
        # whole-volume layer took ~200 ms to set
        box, outline = region.grown_box(mask.data.shape[-3:], 2)
        starts = np.array([b.start for b in box], dtype=float)
        translate = np.array(mask.translate, dtype=float)
        translate[-3:] += np.asarray(mask.scale, dtype=float)[-3:] * starts
        kwargs = {
            "name": HIGHLIGHT,
            "opacity": 1.0,
            "colormap": {0: "transparent", 1: "cyan", None: "cyan"},  # unlike any mask label
            "metadata": {"entrust_role": "highlight"},
            "scale": mask.scale,
            "translate": translate,
            "affine": mask.affine.affine_matrix,
        }
        layer = set_layer(viewer, outline.astype(np.uint8), kwargs, "labels")
        layer.contour = 1
        layer.visible = True
        viewer.layers.selection.active = mask
