"""The table of a prediction's outputs covers the prediction, and files and layers follow it."""

from __future__ import annotations

import dataclasses

import numpy as np

from napari_entrust.inference.prediction import Prediction
from napari_entrust.io.modalities import MODALITIES
from napari_entrust.outputs.catalog import OUTPUTS, entries, from_maps, maps_of, output_of, prediction_files
from napari_entrust.plugin.layer_data import prediction_layers


def _prediction(shape=(4, 5, 3), k=2) -> Prediction:
    rng = np.random.default_rng(0)
    maps = {
        o.file_stem(m): rng.random((3 if o.key == "prob" else k, *shape) if o.stack else shape).astype(np.float32)
        for o, m in entries(MODALITIES)
    }
    return from_maps(maps, MODALITIES, summary={"case": "x"})


def test_every_array_of_a_prediction_is_in_the_table_once():
    arrays = [f.name for f in dataclasses.fields(Prediction) if f.name not in ("validity", "summary")]
    assert sorted(o.key for o in OUTPUTS) == sorted(arrays)
    pred = _prediction()
    maps = maps_of(pred)
    assert len(maps) == len(OUTPUTS) - 2 + 2 * len(MODALITIES)  # one file per modality for specific and weights
    back = from_maps(maps, MODALITIES)
    for name, data in maps.items():
        output, modality = output_of(name)
        value = getattr(back, output.key)
        assert (value[modality] if modality else value) is data
    assert output_of("summary") is None and output_of("specific_t7")[1] == "t7"


def test_files_and_layers_are_named_by_the_table(tmp_path):
    files = prediction_files(MODALITIES, tmp_path)
    assert set(files) == {*maps_of(_prediction()), "summary"}
    assert files["weights_t1ce"] == tmp_path / "weights_t1ce.nii.gz"
    layers = prediction_layers(_prediction(), {"scale": (1, 1, 1), "translate": (0, 0, 0)}, {})
    names = [kwargs["name"] for _, kwargs, _ in layers]
    roles = [kwargs["metadata"]["entrust_role"] for _, kwargs, _ in layers]
    assert len(set(names)) == len(names) == len(set(roles))
    assert names[0] == "mask" and names[-1] == "hypotheses"  # the 4-D stack last: it makes the viewer 4-D
    assert [n for n, (_, kw, _) in zip(names, layers) if kw["visible"]] == ["mask", "TrustMap"]
    assert "evidence only in FLAIR (F_u)" in names and "prob" not in roles  # prob is a file, not a layer
    samples = layers[-1]
    assert samples[0].shape == (2, 4, 5, 3) and samples[1]["scale"] == (1.0, 1, 1, 1)
