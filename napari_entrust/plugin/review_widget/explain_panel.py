"""Explain the selected region: which modality drives it, how faithful each map is, an attribution layer.

Runs :func:`napari_entrust.explain.explanation.explain` in a thread on the last run's layers; the
bars show each modality's share of the fused attribution.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QComboBox, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ...explain.explanation import Explanation, caveat, explain
from ...io.labels import region_votes
from ...io.modalities import DISPLAY_NAMES, MODALITIES
from ...model.config import SamplingConfig
from ...outputs.catalog import OUTPUTS, clear_at_zero, from_maps
from ...review.regions import UncertainRegion
from ..layer_input import case_from_layers
from ..layer_updates import apply_gradually, set_layer
from ..qt_parts import guarded, row
from .session import ReviewSession

ATTRIBUTION = "attribution"
ALL_MODALITIES = "all modalities"


def explanation_lines(region: UncertainRegion, result: Explanation) -> list[str]:
    """The explanation in words: per modality its share (the bars) beside its effect on the TrustMap,
    each said once what it measures, then how faithful the maps are."""
    shares, effects = result.shares["fused"], result.effects
    lines = [
        f"Region {region.number} ({result.summary['region_channel']}). Per modality: its share of the "
        "attribution (the bars; they sum to 100 %) and, when it is replaced by healthy tissue here, the "
        "change of the region's mean TrustMap (negative: the model becomes surer without it)."
    ]
    for m in MODALITIES:
        if m in shares:
            effect = f", TrustMap {effects[m]['trustmap_change']:+.2f}" if m in effects else ""
            lines.append(f"  {DISPLAY_NAMES.get(m, m)}: {shares[m]:.0%} of the attribution{effect}")
    f = result.faithfulness
    aucs = {m: f[m]["deletion_auc"] for m in ("fused", "gradient", "intervention", "random") if m in f}
    lines.append(
        "Deletion AUC (the region's score, 1 for the image as it is and 0 with every input at healthy "
        "tissue, averaged as the most attributed voxels are replaced first; lower = more faithful, "
        "'random' is the floor to beat): " + ", ".join(f"{m} {v:.3f}" for m, v in aucs.items()) + "."
    )
    if min(aucs.values()) < 0:
        lines.append(
            "A negative AUC means the score fell below its all-healthy value part way (replacing only "
            "some voxels changed the prediction more than replacing all): read it as very faithful, "
            "with an interaction between voxels."
        )
    robust = f["fused"]["robustness"]
    lines.append(
        f"Off-target share {f['fused']['leakage']:.0%}"
        + (f", robustness {robust:.2f}." if robust is not None else " (robustness: measured by entrust explain).")
    )
    return lines


class ExplainPanel(QWidget):
    """ "Explain selected region", the per-modality bars, the explanation text and the attribution layer."""

    def __init__(self, session: ReviewSession):
        super().__init__()
        self.session = session
        self.explanation: Explanation | None = None
        self.explain_button = QPushButton("Explain selected region")
        self.explain_button.setToolTip(
            "which modality drives the selected region (the outlined one), and how faithful each "
            "map is; about 10 s for the 2 mm sample on a 2-core CPU (longer when the machine is busy)"
        )
        self.bars = {m: QProgressBar(minimum=0, maximum=100, format=f"{DISPLAY_NAMES[m]} %p%") for m in MODALITIES}
        self.attribution_modality = QComboBox()
        self.attribution_modality.addItems([ALL_MODALITIES, *[DISPLAY_NAMES[m] for m in MODALITIES]])
        self.attribution_modality.setToolTip("what the attribution layer shows: all modalities summed, or one")
        for m, bar in self.bars.items():
            bar.setToolTip(f"{DISPLAY_NAMES[m]}'s share of the evidence for this region's uncertainty")
        self.text = QLabel("")
        self.text.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.explain_button)
        for bar in self.bars.values():
            layout.addWidget(bar)
        choice = row(QLabel("attribution layer"), self.attribution_modality)
        layout.addLayout(choice)
        layout.addWidget(self.text)
        self._result_parts = [*self.bars.values(), self.attribution_modality, choice.itemAt(0).widget()]
        for part in self._result_parts:  # nothing to show before a region is explained
            part.setVisible(False)
        self.explain_button.clicked.connect(self.explain_selected)
        self.attribution_modality.currentIndexChanged.connect(self.show_attribution)
        session.on_running.append(lambda running: self.explain_button.setEnabled(not running))

    def set_status(self, text: str) -> None:
        self.session.set_status(text)

    def _prediction_from_layers(self, to_case):
        """The last run's outputs, read back from its layers in case order.

        ``prob`` is the hypotheses' vote share per region (the calibrated probability is not kept as a
        layer); explanations use it only to pick the most uncertain region channel.
        """
        s = self.session
        maps = {}
        for output in OUTPUTS:
            if output.layer is None or output.per_modality:
                continue
            layer = s.output_layer(output.key)
            if layer is None:
                raise ValueError(f"the {output.layer_name()} layer of the last run is missing: run EnTrust again")
            data = np.asarray(layer.data)
            maps[output.key] = np.stack([to_case(v) for v in data]) if output.stack else to_case(data)
        maps["prob"] = region_votes(maps["samples"]) / len(maps["samples"])
        per_modality = {key: s.maps_by_modality(key) for key in ("specific", "weights")}
        modalities = list(per_modality["weights"])
        if not modalities or set(per_modality["specific"]) != set(modalities):
            raise ValueError("the specific F_u and weights layers of the last run are incomplete: run EnTrust again")
        for key, values in per_modality.items():
            maps.update({f"{key}_{m}": to_case(v) for m, v in values.items()})
        return from_maps(maps, modalities, summary=s.mask().metadata.get("entrust_summary", {}))

    @guarded
    def explain_selected(self, *_args) -> None:
        """Attribute the selected region to the modalities (in a thread; Cancel stops it)."""
        s = self.session
        region = s.selected_region()
        mask = s.mask()
        case, to_layer, to_case = case_from_layers(s.input_layers(mask))
        prediction = self._prediction_from_layers(to_case)
        target = to_case(region.full_mask(mask.data.shape))
        sampling = SamplingConfig(**mask.metadata.get("entrust_sampling", {}))

        def work(bundle, should_stop):
            result = yield from explain(
                case, bundle, prediction, target, sampling=sampling, measure_all_maps=False, should_stop=should_stop
            )
            result.maps = {k: np.stack([to_layer(v) for v in maps]) for k, maps in result.maps.items()}
            return result

        s.runner.start_work(
            f"EnTrust explain region {region.number}",
            mask.metadata.get("entrust_model"),
            mask.metadata.get("entrust_device", "auto"),
            work,
            lambda result: self._show_explanation(region, result),
        )

    def _show_explanation(self, region: UncertainRegion, result: Explanation) -> None:
        self.explanation = result
        shares = result.shares["fused"]
        for mod, bar in self.bars.items():
            bar.setValue(round(100 * shares.get(mod, 0.0)))
        for part in self._result_parts:
            part.setVisible(True)
        lines = explanation_lines(region, result)
        warning = caveat(result.summary)
        if warning:
            lines.append(f"Note: {warning[0].upper()}{warning[1:]}.")
        self.text.setText("\n".join(lines))
        done = f"explained region {region.number} in {result.summary['seconds']:.0f} s"
        # the new layer in turns of its own, after the panel has been laid out and painted
        show = [lambda: self.show_attribution(hidden=True), self._show_attribution_layer]
        steps = [*show, lambda: self.set_status(done)]
        apply_gradually(steps)

    def _show_attribution_layer(self) -> None:
        if ATTRIBUTION in self.session.viewer.layers:
            self.session.viewer.layers[ATTRIBUTION].visible = True

    def show_attribution(self, *_args, hidden: bool = False) -> None:
        """The fused attribution as a layer: summed over modalities, or the chosen one. ``hidden``: a new
        layer is added hidden, to be shown in the next event-loop turn (insert and first draw each
        take 70-150 ms under Xvfb)."""
        mask = self.session.output_layer("mask")
        if self.explanation is None or mask is None:
            return
        fused = self.explanation.maps["fused"]
        choice = self.attribution_modality.currentIndex()
        data = fused.sum(0) if choice == 0 else fused[list(self.explanation.modalities).index(MODALITIES[choice - 1])]
        hi = float(data.max()) if data.max() > 0 else 1.0
        kwargs = {
            "name": ATTRIBUTION,
            **clear_at_zero("attribution", [0.2, 0.4, 1.0, 0.6], [1.0, 0.3, 0.2, 0.95]),
            "opacity": 0.8,
            "contrast_limits": (0.0, hi),
            "metadata": {"entrust_role": "attribution"},
            **({"visible": False} if hidden and ATTRIBUTION not in self.session.viewer.layers else {}),
            "scale": mask.scale,
            "translate": mask.translate,
            "affine": mask.affine.affine_matrix,
        }
        set_layer(self.session.viewer, data.astype(np.float32), kwargs, "image")
