"""DICOM studies in: four MR series made from a phantom, read as their NIfTI twin is, and every bad
study answered by one line naming the series."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_entrust.errors import InputError
from napari_entrust.io.dicom_modalities import SERIES_ENV, parse_series_names
from napari_entrust.io.loader import inspect_case, load_case
from napari_entrust.phantom.dicom_writing import nifti_twin, write_dicom_study
from napari_entrust.phantom.phantom import make_phantom


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, Path]:
    """A study (LPS; T2 on a grid of thicker, shifted slices; localisers in the FLAIR series and in a
    series of their own) and its NIfTI twin."""
    root = tmp_path_factory.mktemp("dicom")
    volumes = write_dicom_study(make_phantom(seed=5, spacing=2), root / "study")
    return root / "study", nifti_twin(volumes, root / "twin", "twin")


def _load(source, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the T2 series is resampled onto the reference, and says so
        return load_case(source, **kwargs)


def _series_files(folder: Path) -> dict[int, list[tuple[Path, pydicom.Dataset]]]:
    """Each series' image files (localisers left out), by series number, in slice order."""
    out: dict[int, list] = {}
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        if "LOCALIZER" not in list(ds.ImageType):
            out.setdefault(int(ds.SeriesNumber), []).append((path, ds))
    return {n: sorted(v, key=lambda pd: float(pd[1].ImagePositionPatient[2])) for n, v in out.items()}


def _copy(study_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(study_dir, tmp_path / "study"))


def test_a_dicom_study_gives_the_case_and_the_mask_of_its_nifti_twin(study):
    from napari_entrust.inference.engine import predict_case
    from napari_entrust.model.checkpoint import load_checkpoint

    folder, twin = study
    case, nifti = _load(folder), _load(twin)
    assert case.layout == "dicom" and case.shape == nifti.shape
    np.testing.assert_allclose(case.grid.affine, nifti.grid.affine, atol=1e-4)  # the same place in the world
    for mod in case.images:  # int16 with a rescale slope: within 1/30000 of each image's range
        scale = float(np.abs(nifti.images[mod]).max())
        np.testing.assert_allclose(case.images[mod], nifti.images[mod], atol=scale * 1e-4)
    assert "series 4 (AX T2 TSE)" in case.sources["t2"] and "t2" in case.resampled
    left_out = [c for c in case.checks if c.name == "left out"]
    assert {c.subject.split(" series ")[1] for c in left_out} == {"5 (AX T2 FLAIR)", "1 (3-PLANE LOC)"}
    bundle = load_checkpoint()
    a, b = predict_case(case, bundle), predict_case(nifti, bundle)
    dice = 2 * ((a.mask > 0) & (b.mask > 0)).sum() / ((a.mask > 0).sum() + (b.mask > 0).sum())
    assert (a.mask > 0).sum() > 500 and dice >= 0.999


def test_series_named_in_a_site_s_own_words(study, tmp_path, monkeypatch):
    folder = _copy(study[0], tmp_path)
    for path, ds in _series_files(folder)[4]:  # T2 called something no rule knows, and no timing to go on
        ds.SeriesDescription, ds.EchoTime, ds.RepetitionTime = "SEQ 4 AX", None, None
        ds.save_as(path)
    with pytest.raises(InputError) as err:
        _load(folder)
    assert "no series could be matched to T2" in str(err.value) and "series 4 (SEQ 4 AX)" in str(err.value)
    assert "\n" not in str(err.value) and "--series t2=" in str(err.value)
    assert "series 4 (SEQ 4 AX)" in _load(folder, series={"t2": "seq 4"}).sources["t2"]  # words of its description
    assert "series 4" in _load(folder, series={"t2": "4"}).sources["t2"]  # or its number
    monkeypatch.setenv(SERIES_ENV, "t2=SEQ 4")  # for the napari reader, which takes no options
    assert "series 4" in _load(folder).sources["t2"]
    with pytest.raises(InputError, match="no series is named 'nothing like it'"):
        _load(folder, series={"t2": "nothing like it"})


def test_two_series_that_fit_one_modality_are_named_and_the_user_asked_to_choose(study, tmp_path):
    folder = _copy(study[0], tmp_path)
    for path, ds in _series_files(folder)[4]:
        ds.SeriesDescription = "AX T2 FLAIR 2"
        ds.save_as(path)
    with pytest.raises(InputError, match=r"2 series fit FLAIR: .*series 4 .*series 5 .*--series flair=4"):
        _load(folder)
    with pytest.raises(InputError, match="no series could be matched to T2"):
        _load(folder, series={"flair": "5"})  # the other one is then no T2 either: it must be named too
    assert "series 5" in _load(folder, series={"flair": "5", "t2": "4"}).sources["flair"]


def test_series_are_matched_by_their_sequence_parameters_when_descriptions_say_nothing(study, tmp_path):
    folder = _copy(study[0], tmp_path)
    for number, series in _series_files(folder).items():
        for path, ds in series:
            ds.SeriesDescription, ds.ProtocolName = f"SERIES {number}", ""
            ds.save_as(path)
    case = _load(folder)
    assert {m: s.rsplit(" ", 1)[-1] for m, s in case.sources.items()} == {
        "t1": "2)",
        "t1ce": "3)",
        "t2": "4)",
        "flair": "5)",
    }


def _bad_series(study_dir: Path, tmp_path: Path, change) -> Path:
    """The study with the T1ce series (number 3) changed by ``change(files)``."""
    folder = _copy(study_dir, tmp_path)
    change(_series_files(folder)[3])
    return folder


def _missing_slice(files):
    files[len(files) // 2][0].unlink()


def _uneven(files):
    for path, ds in files[::3]:
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(ds.ImagePositionPatient[2]) + 0.7]
        ds.save_as(path)


def _rotated(files):
    path, ds = files[10]
    ds.ImageOrientationPatient = [-0.99, 0.14, 0.0, 0.0, -1.0, 0.0]
    ds.save_as(path)


def _duplicated(files):
    path, ds = files[10]
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(path.with_name(path.name + "b"))


def _compressed(files):
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder
    from pydicom.uid import HTJ2KLossless

    assert not get_decoder(HTJ2KLossless).is_available  # no plugin for it is installed here
    path, ds = files[10]
    ds.file_meta.TransferSyntaxUID = HTJ2KLossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    ds.save_as(path)


def _one_slice(files):
    for path, _ in files[1:]:
        path.unlink()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_missing_slice, "is missing 1 slice(s) (slices every 2 mm"),
        (_uneven, "has uneven slice spacing"),
        (_rotated, "mixes slices of several orientations"),
        (_duplicated, "slice(s) at the same position as another"),
        (_compressed, "is compressed (High-Throughput JPEG 2000"),
        (_one_slice, "holds a single image"),
    ],
)
def test_a_bad_series_is_one_line_naming_it(study, tmp_path, change, says):
    folder = _bad_series(study[0], tmp_path, change)
    with pytest.raises(InputError) as err:
        _load(folder)
    text = str(err.value)
    assert says in text and "\n" not in text
    assert text.startswith(f"{folder} series 3 (AX T1 SE POST GD): ")
    # entrust info runs every check it can and lists this one as failed
    case, checks = inspect_case(folder)
    assert case is None and any(not c.ok and says in c.detail for c in checks)


def test_a_folder_with_neither_nifti_nor_dicom_files_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no DICOM files"):
        load_case(tmp_path)


def test_series_names_are_parsed_with_their_modality_spellings():
    assert parse_series_names("t1c=POST; T2F=7,t1n=AX T1") == {"t1ce": "POST", "flair": "7", "t1": "AX T1"}
    for bad in ("t1ce", "t1ce=", "seg=3", "pd=4"):
        with pytest.raises(ValueError):
            parse_series_names(bad)


def test_the_command_line_reads_a_study_and_names_its_series(study, tmp_path, capsys):
    from napari_entrust.cli import main

    folder = study[0]
    assert main(["info", str(folder), "--series", "t2=4"]) == 0
    out = capsys.readouterr().out
    assert "layout dicom" in out and "series 3 (AX T1 SE POST GD)" in out and "localiser image(s) left out" in out
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--out", str(out), "-k", "2", "--steps", "2", "--format", "dicom-seg"]) == 0
    import highdicom as hd
    import nibabel as nib

    mask = np.asarray(nib.load(out / "mask.nii.gz").dataobj)
    seg = hd.seg.segread(out / "mask.seg.dcm").get_volume(combine_segments=True).array
    assert (mask > 0).sum() > 500 and np.bincount(seg.ravel(), minlength=4)[1:].tolist() == [
        int((mask == v).sum()) for v in (1, 2, 4)
    ]
    assert (out / "trustmap.seg.dcm").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["input_sha256"]) == ["flair", "t1", "t1ce", "t2"]  # each series' files, hashed
    capsys.readouterr()
    assert main(["info", str(folder), "--series", "t2"]) == 2
    err = capsys.readouterr().err
    assert "--series" in err and "MODALITY=NUMBER-OR-WORDS" in err and "Traceback" not in err
    bad = _bad_series(folder, tmp_path, _missing_slice)
    assert main(["predict", str(bad), "--out", str(tmp_path / "bad-out")]) == 2
    err = capsys.readouterr().err
    assert "series 3 (AX T1 SE POST GD): is missing 1 slice(s)" in err and "Traceback" not in err
    assert not (tmp_path / "bad-out").exists()


def test_the_sample_command_writes_a_dicom_study_with_its_truth_beside_it(tmp_path, capsys):
    from napari_entrust.cli import main
    from napari_entrust.phantom.phantom import make_phantom

    assert main(["sample", str(tmp_path / "s"), "--seed", "3", "--format", "dicom"]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["study", "truth"]
    case = _load(tmp_path / "s" / "study")
    phantom = make_phantom(seed=3, spacing=2)
    assert case.layout == "dicom" and case.shape == phantom.labels.shape
    np.testing.assert_allclose(case.affine, phantom.affine, atol=1e-4)  # the study lies where the phantom does
    flair = phantom.images["flair"]
    np.testing.assert_allclose(case.images["flair"], flair, atol=float(np.abs(flair).max()) * 1e-4)
    from napari_entrust.io.loader import read_label_file

    labels, _ = read_label_file(tmp_path / "s" / "truth" / "labels.nii.gz")
    np.testing.assert_array_equal(labels.data, phantom.labels)  # the label map, for entrust evaluate


def test_series_of_several_patients_are_refused(study, tmp_path):
    folder = _copy(study[0], tmp_path)
    for path, ds in _series_files(folder)[4]:
        ds.PatientID, ds.StudyInstanceUID = "SOMEONE ELSE", pydicom.uid.generate_uid()
        ds.save_as(path)
    with pytest.raises(InputError, match="come from 2 patients .*T2: .*series 4") as err:
        _load(folder)
    assert "\n" not in str(err.value)


def test_site_names_compare_words_not_separators_and_a_bad_variable_is_named(study, tmp_path, monkeypatch):
    folder = _copy(study[0], tmp_path)
    for path, ds in _series_files(folder)[3]:
        ds.SeriesDescription = "AX_T1_POST-GD"
        ds.save_as(path)
    assert "series 3" in _load(folder, series={"t1ce": "T1_POST"}).sources["t1ce"]
    monkeypatch.setenv(SERIES_ENV, "t1ce-POST")
    with pytest.raises(InputError, match=f"^{SERIES_ENV}: .*not MODALITY=NUMBER-OR-WORDS"):
        _load(folder)


def test_an_enhanced_multi_frame_series_is_named_as_such(study, tmp_path):
    folder = _copy(study[0], tmp_path)
    for path, ds in _series_files(folder)[3]:
        ds.NumberOfFrames = 2
        del ds.ImagePositionPatient  # kept in per-frame groups in an enhanced image
        ds.save_as(path)
    with pytest.raises(InputError, match=r"series 3 \(AX T1 SE POST GD\): is an enhanced \(multi-frame\) image"):
        _load(folder)


def test_a_nifti_saved_into_a_study_does_not_hide_it(study, tmp_path):
    import nibabel as nib

    folder = _copy(study[0], tmp_path)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), str(folder / "corrected.nii.gz"))
    assert _load(folder).layout == "dicom"
