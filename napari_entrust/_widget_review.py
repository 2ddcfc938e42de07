"""The "Review uncertainty" dock widget: uncertain regions ranked, why, correct, re-sample, save.

Regions come from :func:`napari_entrust.review.find_uncertain_regions` on the TrustMap layer; every
action edits the ``mask`` layer through ``data_setitem`` inside ``block_history`` (one undo step in
napari); corrections are autosaved to a recovery file after every edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                            QLabel, QProgressBar, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout,
                            QWidget)

from . import recovery
from ._widget_runner import PredictionRunner, describe_error, result_layers, run_context, show_layers
from ._viewer_layers import case_from_layers, set_layer
from ._writer import layer_meta, save_corrected_mask
from .config import SamplingConfig
from .engine import Prediction
from .explain import Explanation, caveat, explain
from .labels import region_votes
from .modalities import DISPLAY_NAMES, MODALITIES
from .provenance import now
from .review import (DEFAULT_THRESHOLD, Edit, ReviewState, UncertainRegion, adopt_values, bbox_of, erase_values,
                     find_uncertain_regions)

if TYPE_CHECKING:
    import napari

COLUMNS = ("#", "size (mL)", "mean TrustMap", "why", "reviewed")
HIGHLIGHT = "review region"
ATTRIBUTION = "attribution"
ALL_MODALITIES = "all modalities"
AUTOSAVE_DELAY_MS = 300


def _atom_voxels(atom) -> int:
    """Voxels changed by one napari paint-history atom (a mask atom or an (indices, old, new) tuple)."""
    if isinstance(atom, tuple):
        return int(np.asarray(atom[0][0]).size)
    mask = getattr(atom, "mask", None)
    return int(mask.sum()) if mask is not None else int(np.asarray(getattr(atom, "old_values", [])).size)


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    return row


class ReviewWidget(QWidget):
    """Find, explain and correct the high-uncertainty regions of the last EnTrust run."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self._viewer = viewer
        self.regions: list[UncertainRegion] = []
        self._applying = False  # our own edits, not hand painting
        self._offered: set[str] = set()
        self._pending: tuple | None = None  # (key, recovery file, source layer) offered for restore
        self._hooked_mask = None
        self._autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._autosave_timer.timeout.connect(self.autosave)

        self._threshold = QDoubleSpinBox(minimum=0.05, maximum=0.95, singleStep=0.05, value=DEFAULT_THRESHOLD)
        self._find_button = QPushButton("Find uncertain regions")
        self._table = QTableWidget(0, len(COLUMNS))
        self._table.setHorizontalHeaderLabels(COLUMNS)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._hypothesis = QSpinBox(minimum=1, maximum=1)
        self._keep_button = QPushButton("Keep mask")
        self._adopt_button = QPushButton("Adopt hypothesis")
        self._previous_button = QPushButton("◀")
        self._next_button = QPushButton("▶")
        self._erase_button = QPushButton("Erase")
        self._paint_button = QPushButton("Paint")
        self._resample_button = QPushButton("Re-sample with my edits")
        self._cancel_button = QPushButton("Cancel", enabled=False)
        self._save_button = QPushButton("Save corrected mask…")
        self._restore_label = QLabel("")
        self._restore_label.setWordWrap(True)
        self._restore_button = QPushButton("Restore")
        self._discard_button = QPushButton("Discard")
        self._explain_button = QPushButton("Explain selected region")
        self._explain_button.setToolTip("which modality drives this region (Grad-CAM, intervention, fused), and how "
                                        "faithful each map is; about half a minute on a 2-core CPU")
        self._bars = {m: QProgressBar(minimum=0, maximum=100, format=f"{DISPLAY_NAMES[m]} %p%") for m in MODALITIES}
        self._attribution_modality = QComboBox()
        self._attribution_modality.addItems([ALL_MODALITIES, *[DISPLAY_NAMES[m] for m in MODALITIES]])
        self._explain_text = QLabel("")
        self._explain_text.setWordWrap(True)
        self.explanation: Explanation | None = None
        self._status = QLabel("")
        self._status.setWordWrap(True)
        self._build_layout()

        self._runner = PredictionRunner(on_state=self._set_running, on_status=self._status.setText)
        self._find_button.clicked.connect(self.find_regions)
        self._table.itemSelectionChanged.connect(self._selection_changed)
        self._keep_button.clicked.connect(self.keep)
        self._adopt_button.clicked.connect(lambda: self.adopt(self._hypothesis.value() - 1))
        self._previous_button.clicked.connect(lambda: self.step_hypothesis(-1))
        self._next_button.clicked.connect(lambda: self.step_hypothesis(+1))
        self._erase_button.clicked.connect(self.erase)
        self._paint_button.clicked.connect(self.paint)
        self._resample_button.clicked.connect(self.resample)
        self._cancel_button.clicked.connect(self._runner.cancel)
        self._save_button.clicked.connect(self._save_clicked)
        self._explain_button.clicked.connect(self.explain_selected)
        self._attribution_modality.currentIndexChanged.connect(self._show_attribution)
        self._restore_button.clicked.connect(self.restore)
        self._discard_button.clicked.connect(self.discard_recovery)
        viewer.layers.events.inserted.connect(self._layer_inserted)
        self._show_restore(None)
        for layer in list(viewer.layers):
            self._check_recovery(layer)

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("TrustMap threshold", self._threshold)
        row = _row
        restore = row(self._restore_button, self._discard_button)
        layout = QVBoxLayout(self)
        for item in (self._restore_label, restore, form, self._find_button, self._table,
                     row(self._keep_button, self._erase_button, self._paint_button),
                     row(QLabel("hypothesis"), self._hypothesis, self._previous_button, self._next_button,
                         self._adopt_button),
                     row(self._resample_button, self._cancel_button), self._save_button,
                     self._explain_button, *self._bars.values(), row(QLabel("attribution layer"),
                                                                     self._attribution_modality),
                     self._explain_text, self._status):
            (layout.addLayout if not isinstance(item, QWidget) else layout.addWidget)(item)

    # -- the layers of the last run ----------------------------------------------------------------
    def _layer(self, name: str, role: str | None = None):
        if name in self._viewer.layers:
            layer = self._viewer.layers[name]
            if role is None or layer.metadata.get("entrust_role") == role:
                return layer
        return None

    def _mask(self):
        mask = self._layer("mask", "mask")
        if mask is None:
            raise ValueError("no EnTrust result in the viewer: run EnTrust first (Plugins > EnTrust)")
        if "entrust_review" not in mask.metadata:
            mask.metadata["entrust_review"] = ReviewState.start(mask.data)
        if self._hooked_mask is not mask:
            mask.events.paint.connect(self._painted)
            self._hooked_mask = mask
        return mask

    def state(self) -> ReviewState:
        return self._mask().metadata["entrust_review"]

    def _guard(action):  # noqa: N805 - decorator: problems become notifications, never tracebacks
        def wrapped(self, *args, **kwargs):
            try:
                return action(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                text = describe_error(exc)
                self._status.setText(text)
                show_error(text)
                return None
        wrapped.__name__ = action.__name__
        wrapped.__doc__ = action.__doc__
        return wrapped

    # -- regions -------------------------------------------------------------------------------------
    @_guard
    def find_regions(self, *_args) -> list[UncertainRegion]:
        """Threshold the TrustMap, rank the connected regions, fill the table."""
        mask = self._mask()
        trust = self._layer("TrustMap", "trustmap")
        if trust is None:
            raise ValueError("the TrustMap layer is missing: run EnTrust again")
        weights = self._maps_by_modality("weights")
        specific = self._maps_by_modality("specific F_u")
        conflict = np.asarray(self._viewer.layers["conflict F_cf"].data)
        summary = mask.metadata.get("entrust_summary", {})
        grid = mask.metadata.get("entrust_grid")
        voxel_ml = float(abs(np.linalg.det(np.asarray(grid["affine"])[:3, :3])) / 1000) if grid else \
            float(np.prod(np.abs(mask.scale[-3:]))) / 1000
        self.regions = find_uncertain_regions(np.asarray(trust.data), voxel_ml=voxel_ml, weights=weights,
                                              specific=specific, conflict=conflict,
                                              threshold=self._threshold.value())
        samples = self._layer("samples", "samples")
        self._hypothesis.setMaximum(samples.data.shape[0] if samples is not None else 1)
        self._fill_table()
        self._status.setText(f"{len(self.regions)} regions above {self._threshold.value():.2f} "
                             f"(case score {summary.get('case_score', {}).get('score', float('nan')):.3f})")
        return self.regions

    def _maps_by_modality(self, group: str) -> dict[str, np.ndarray]:
        """Per-modality result maps (``weights`` / ``specific F_u``), found by the role the run gave them."""
        return {layer.metadata["entrust_modality"]: np.asarray(layer.data) for layer in self._viewer.layers
                if str(layer.metadata.get("entrust_role", "")).startswith(f"{group} ")}

    @staticmethod
    def _display(mod: str) -> str:
        return DISPLAY_NAMES.get(mod, mod)

    def _fill_table(self) -> None:
        self._table.setRowCount(len(self.regions))
        for row, r in enumerate(self.regions):
            values = (str(r.number), f"{r.size_ml:.2f}", f"{r.mean_trust:.2f}", r.why, "yes" if r.reviewed else "no")
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                if col == 3:
                    item.setToolTip(", ".join(f"{self._display(m)} {s:.0%}" for m, s in r.pattern.items()))
                self._table.setItem(row, col, item)
        self._table.resizeColumnsToContents()

    def select(self, row: int) -> None:
        self._table.selectRow(row)

    def selected(self) -> UncertainRegion:
        rows = self._table.selectionModel().selectedRows()
        if not rows:
            raise ValueError("select a region in the table first")
        return self.regions[rows[0].row()]

    def _selection_changed(self) -> None:
        rows = self._table.selectionModel().selectedRows()
        if rows:
            self.go_to(self.regions[rows[0].row()])

    @_guard
    def go_to(self, region: UncertainRegion) -> None:
        """Move the dims slider and the camera to the region and outline it."""
        mask = self._mask()
        world = np.asarray(mask.data_to_world(region.centre), dtype=float)
        ndim = self._viewer.dims.ndim
        axes = list(range(ndim - 3, ndim))
        self._viewer.dims.set_point(axes, world[-3:])
        camera = self._viewer.scene.camera if hasattr(self._viewer, "scene") else self._viewer.camera
        camera.center = tuple(world[-3:][[a - (ndim - 3) for a in self._viewer.dims.displayed
                                                       if a >= ndim - 3]])
        outline = region.full_mask(mask.data.shape).astype(np.uint8)
        kwargs = {"name": HIGHLIGHT, "opacity": 1.0, "metadata": {"entrust_role": "highlight"},
                  "scale": mask.scale, "translate": mask.translate, "affine": mask.affine.affine_matrix}
        layer = set_layer(self._viewer, outline, kwargs, "labels")
        layer.contour = 1
        self._viewer.layers.selection.active = mask

    # -- actions -------------------------------------------------------------------------------------
    def _apply(self, region: UncertainRegion, indices, values, edit: Edit) -> None:
        mask = self._mask()
        self._applying = True
        try:
            with mask.block_history():
                mask.data_setitem(indices, values)
        finally:
            self._applying = False
        self.state().record(edit, region)
        region.reviewed = True
        self._fill_table()
        self._autosave_timer.start()

    @_guard
    def keep(self, *_args) -> None:
        """Accept the current mask in the region (it is held fixed when re-sampling)."""
        r = self.selected()
        self._apply(r, r.indices(), self._mask().data[r.indices()], Edit("keep", r.voxels, r.number, None,
                                                                           bbox_of(r.indices())))

    @_guard
    def adopt(self, k: int) -> None:
        """Replace the mask by hypothesis ``k`` (0-based) inside the selected region only."""
        r = self.selected()
        samples = self._layer("samples", "samples")
        if samples is None:
            raise ValueError("the samples layer is missing: run EnTrust again")
        if not 0 <= k < samples.data.shape[0]:
            raise ValueError(f"hypothesis {k + 1} does not exist (K = {samples.data.shape[0]})")
        idx, values = adopt_values(r, np.asarray(samples.data), k)
        self._apply(r, idx, values, Edit("adopt", r.voxels, r.number, k + 1, bbox_of(idx)))
        self._hypothesis.setValue(k + 1)

    def step_hypothesis(self, step: int) -> None:
        """Show the next/previous hypothesis inside the selected region (each step is one undo)."""
        k = (self._hypothesis.value() - 1 + step) % max(self._hypothesis.maximum(), 1)
        self.adopt(k)

    @_guard
    def erase(self, *_args) -> None:
        r = self.selected()
        idx, values = erase_values(r)
        self._apply(r, idx, values, Edit("erase", r.voxels, r.number, None, bbox_of(idx)))

    @_guard
    def paint(self, *_args) -> None:
        """Hand over to napari's paint brush on the mask layer."""
        mask = self._mask()
        self._viewer.layers.selection.active = mask
        mask.mode = "paint"
        self._status.setText("paint on the mask layer with napari's brush (label 2 oedema, 1 core, 4 enhancing); "
                             "Ctrl+Z undoes")

    def _painted(self, event) -> None:
        if self._applying:
            return
        voxels = sum(_atom_voxels(atom) for atom in (event.value or []))
        self.state().edits.append(Edit("paint", voxels))
        self._autosave_timer.start()

    # -- re-sample -----------------------------------------------------------------------------------
    @_guard
    def resample(self, *_args) -> None:
        """Re-run SegDiff holding every edited or reviewed voxel fixed; the other voxels re-settle."""
        mask = self._mask()
        state = self.state()
        current = np.asarray(mask.data)
        fixed_layer = state.fixed(current)
        if not fixed_layer.any():
            raise ValueError("nothing to hold fixed yet: keep, adopt, erase or paint a region first")
        layers = self._input_layers(mask)
        case, to_layer, to_case = case_from_layers(layers)
        sampling = SamplingConfig(**mask.metadata.get("entrust_sampling", {}))
        device = mask.metadata.get("entrust_device", "auto")
        context = run_context(layers, to_layer)
        fixed, fixed_labels = to_case(fixed_layer), to_case(current)
        count = int(fixed_layer.sum())

        def show(tuples: list) -> None:
            def finish() -> None:
                new_mask = self._viewer.layers["mask"]
                state.rebase(new_mask.data)
                state.edits.append(Edit("resample", count))
                new_mask.metadata["entrust_review"] = state
                self._hooked_mask = None
                self._mask()
                self.find_regions()
                self._status.setText(f"re-sampled with {count} voxels held fixed; TrustMap updated")
                self._autosave_timer.start()

            show_layers(self._viewer, tuples, finish)

        self._runner.start(case, mask.metadata.get("entrust_model"), device, sampling,
                           prepare=lambda pred, bundle: result_layers(pred, bundle, case, sampling, device, context),
                           on_result=show, fixed=fixed, fixed_labels=fixed_labels)

    def _set_running(self, running: bool) -> None:
        self._resample_button.setEnabled(not running)
        self._explain_button.setEnabled(not running)
        self._cancel_button.setEnabled(running)

    # -- explain -------------------------------------------------------------------------------------
    def _input_layers(self, mask) -> dict:
        inputs = mask.metadata.get("entrust_inputs", {})
        missing = [name for name in inputs.values() if name not in self._viewer.layers]
        if missing or not inputs:
            raise ValueError(f"the input layers {', '.join(missing) or '(unknown)'} are gone; reopen the case")
        return {m: self._viewer.layers[name] for m, name in inputs.items()}

    def _prediction_from_layers(self, to_case) -> Prediction:
        """The last run's outputs, read back from its layers in case order.

        ``prob`` is the hypotheses' vote share per region (the calibrated probability is not kept as a
        layer); explanations use it only to pick the most uncertain region channel.
        """
        def layer_data(name: str, role: str) -> np.ndarray:
            layer = self._layer(name, role)
            if layer is None:
                raise ValueError(f"the {name} layer of the last run is missing: run EnTrust again")
            return np.asarray(layer.data)

        def data(name: str, role: str) -> np.ndarray:
            return to_case(layer_data(name, role))

        samples = np.stack([to_case(s) for s in layer_data("samples", "samples")])
        return Prediction(
            mask=data("mask", "mask"), prob=region_votes(samples) / len(samples),
            samples=samples, trustmap=data("TrustMap", "trustmap"), entropy=data("entropy", "entropy"),
            mutual_info=data("mutual info", "mutual_info"), probe=data("probe", "probe"),
            consensus=data("consensus F_c", "consensus"), conflict=data("conflict F_cf", "conflict"),
            specific={m: to_case(v) for m, v in self._maps_by_modality("specific F_u").items()},
            weights={m: to_case(v) for m, v in self._maps_by_modality("weights").items()},
            summary=self._mask().metadata.get("entrust_summary", {}))

    @_guard
    def explain_selected(self, *_args) -> None:
        """Attribute the selected region to the modalities (in a thread; Cancel stops it)."""
        region = self.selected()
        mask = self._mask()
        case, to_layer, to_case = case_from_layers(self._input_layers(mask))
        prediction = self._prediction_from_layers(to_case)
        target = to_case(region.full_mask(mask.data.shape))
        sampling = SamplingConfig(**mask.metadata.get("entrust_sampling", {}))

        def work(bundle, should_stop):
            result = yield from explain(case, bundle, prediction, target, sampling=sampling, should_stop=should_stop)
            result.maps = {k: np.stack([to_layer(v) for v in maps]) for k, maps in result.maps.items()}
            return result

        self._runner.start_work(f"EnTrust explain region {region.number}", mask.metadata.get("entrust_model"),
                                mask.metadata.get("entrust_device", "auto"), work,
                                lambda result: self._show_explanation(region, result))

    def _show_explanation(self, region: UncertainRegion, result: Explanation) -> None:
        self.explanation = result
        shares = result.shares["fused"]
        for mod, bar in self._bars.items():
            bar.setValue(round(100 * shares.get(mod, 0.0)))
        lines = [f"Region {region.number} ({result.summary['region_channel']}): share of the fused attribution above."]
        if result.effects:
            lines.append("Replacing one modality by healthy tissue here changes the TrustMap by " + ", ".join(
                f"{self._display(m)} {e['trustmap_change']:+.2f}" for m, e in result.effects.items()) + ".")
        f = result.faithfulness
        lines.append("Deletion AUC (lower = more faithful): " + ", ".join(
            f"{m} {f[m]['deletion_auc']:.3f}" for m in ("fused", "gradient", "intervention", "random")) +
            f"; off-target {f['fused']['leakage']:.0%}, robustness {f['fused']['robustness']:.2f}.")
        warning = caveat(result.summary)
        if warning:
            lines.append(f"Note: {warning[0].upper()}{warning[1:]}.")
        self._explain_text.setText("\n".join(lines))
        self._show_attribution()
        self._status.setText(f"explained region {region.number} in {result.summary['seconds']:.0f} s")

    def _show_attribution(self, *_args) -> None:
        """The fused attribution as a layer: summed over modalities, or the chosen one."""
        if self.explanation is None or self._layer("mask", "mask") is None:
            return
        fused = self.explanation.maps["fused"]
        choice = self._attribution_modality.currentIndex()
        data = fused.sum(0) if choice == 0 else fused[list(self.explanation.modalities).index(MODALITIES[choice - 1])]
        mask = self._layer("mask", "mask")
        hi = float(data.max()) if data.max() > 0 else 1.0
        kwargs = {"name": ATTRIBUTION, "colormap": "turbo", "blending": "additive", "opacity": 0.7,
                  "contrast_limits": (0.0, hi), "metadata": {"entrust_role": "attribution"},
                  "scale": mask.scale, "translate": mask.translate, "affine": mask.affine.affine_matrix}
        set_layer(self._viewer, data.astype(np.float32), kwargs, "image")

    # -- save and recovery ---------------------------------------------------------------------------
    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save corrected mask", "corrected_mask.nii.gz",
                                              "NIfTI (*.nii.gz *.nii)")
        if path:
            self.save(path, overwrite=True)  # the dialog has asked before replacing a file

    @_guard
    def save(self, path: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
        """Write the mask on the source grid plus its provenance sidecar; then drop the recovery file."""
        mask = self._mask()
        state = self.state()
        record = {"edits": [e.to_dict() for e in state.edits], "region_threshold": self._threshold.value(),
                  "fixed_voxels": int(state.fixed(np.asarray(mask.data)).sum())}
        files = save_corrected_mask(path, np.asarray(mask.data), layer_meta(mask), record, overwrite=overwrite)
        key = self._key(mask.metadata)
        if key:
            recovery.discard(key)
        self._status.setText(f"saved {files[0]} and {files[1].name}")
        return files

    @staticmethod
    def _key(metadata: dict) -> str | None:
        sources = metadata.get("entrust_sources")
        return recovery.case_key(metadata.get("entrust_case", ""), sources) if sources else None

    def autosave(self) -> Path | None:
        """Write the corrections so far to the case's recovery file (atomic)."""
        try:
            mask = self._mask()
        except ValueError:
            return None
        key = self._key(mask.metadata)
        if key is None:
            return None
        state = self.state()
        record = {"case": mask.metadata.get("entrust_case"), "saved_at": now(),
                  "edits": [e.to_dict() for e in state.edits]}
        try:
            return recovery.autosave(key, np.asarray(mask.data), record, predicted=state.predicted,
                                     decided=state.decided)
        except Exception as exc:  # noqa: BLE001 - autosave must never interrupt the user
            self._status.setText(f"autosave failed: {exc}")
            return None

    def _layer_inserted(self, event) -> None:
        self._check_recovery(event.value)

    def _check_recovery(self, layer) -> None:
        """Offer autosaved corrections when a layer of a case with a recovery file appears."""
        key = self._key(getattr(layer, "metadata", {}))
        if key is None or key in self._offered or layer.metadata.get("entrust_role") is not None:
            return
        self._offered.add(key)
        found = recovery.find_recovery(key)
        if found is not None:
            self._pending = (key, found, layer)
            self._show_restore(found)
            show_info(f"Unsaved corrections of case {layer.metadata.get('entrust_case')} were found: "
                      "Restore them in the Review uncertainty widget")

    def _show_restore(self, found: Path | None) -> None:
        visible = found is not None
        if visible:
            rec = recovery.load_recovery(found)
            self._restore_label.setText(f"Unsaved corrections of {rec.record.get('case')} from "
                                        f"{rec.record.get('saved_at')} ({len(rec.record.get('edits', []))} edits).")
        for w in (self._restore_label, self._restore_button, self._discard_button):
            w.setVisible(visible)

    @_guard
    def restore(self, *_args) -> None:
        """Bring back the autosaved corrections as the mask layer (undoable if a mask layer exists)."""
        if self._pending is None:
            raise ValueError("there are no autosaved corrections to restore")
        key, found, source = self._pending
        rec = recovery.load_recovery(found)
        mask = self._layer("mask", "mask")
        if mask is not None and mask.data.shape == rec.labels.shape:
            changed = np.nonzero(np.asarray(mask.data) != rec.labels)
            self._applying = True
            try:
                with mask.block_history():
                    mask.data_setitem(changed, rec.labels[changed])
            finally:
                self._applying = False
        else:
            meta = {k: v for k, v in source.metadata.items() if k.startswith("entrust_") and k != "entrust_modality"}
            mask = set_layer(self._viewer, rec.labels, {
                "name": "mask", "opacity": 0.6, "metadata": {**meta, "entrust_role": "mask"},
                "scale": source.scale, "translate": source.translate, "affine": source.affine.affine_matrix},
                "labels")
        state = ReviewState(rec.predicted if rec.predicted is not None else rec.labels.copy(),
                            rec.decided if rec.decided is not None else np.zeros(rec.labels.shape, bool),
                            [Edit(**e) for e in rec.record.get("edits", [])])
        state.edits.append(Edit("restore", int((state.predicted != rec.labels).sum())))
        mask.metadata["entrust_review"] = state
        self._hooked_mask = None
        self._mask()
        self._show_restore(None)
        self._status.setText(f"restored the corrections autosaved at {rec.record.get('saved_at')}")

    def discard_recovery(self, *_args) -> None:
        if self._pending is None:
            return
        recovery.discard(self._pending[0])
        self._pending = None
        self._show_restore(None)
        self._status.setText("autosaved corrections discarded")
