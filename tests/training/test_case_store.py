"""Training from the on-disk store: the same crops as from memory, nothing half-written taken as
cached, labelled folders prepared once, DataLoader workers and rank shares reproducible."""

from __future__ import annotations

import os

import numpy as np
import pytest

from napari_entrust.training.case_store import StoredCase, store_case, stored_case
from napari_entrust.training.cases import TrainingCase, folder_cases, phantom_cases
from napari_entrust.training.crop_loader import CropBatches, crop_batches, rank_share
from napari_entrust.training.crops import CropSampler
from tests.helpers import write_brats_folder


def synthetic_case(i: int, shape=(40, 36, 12)) -> TrainingCase:
    rng = np.random.default_rng(i)
    images = rng.uniform(0.1, 1.0, (4, *shape)).astype(np.float32)
    images[:, :4] = 0  # background
    labels = np.zeros(shape, np.uint8)
    labels[12:28, 10:26, 3:9] = 2
    labels[16:24, 14:22, 4:8] = 4
    raters = np.stack([labels, np.where(labels == 4, 1, labels), labels])
    raters[2, 26:30, 10:26, 3:9] = 2  # the third rater draws the oedema wider: a disputed rim
    stats = {m: (0.0, 100.0 + i) for m in ("t1", "t1ce", "t2", "flair")}
    return TrainingCase(f"synthetic-{i}", images, raters, stats)


def batches(cases, n=6, seed=5, **kw):
    sampler = CropSampler(cases, 2, 16, conflict_fraction=0.3, seed=seed, **kw)
    out = []
    for i in range(n):
        if i % 2 == 0:
            sampler.new_epoch()
        out.append(sampler.batch(3))
    return out


def test_a_stored_case_reads_back_and_gives_the_same_crops_as_in_memory(tmp_path):
    cases = [synthetic_case(i) for i in range(3)]
    stored = [store_case(tmp_path, f"key-{i}", c) for i, c in enumerate(cases)]
    assert all(isinstance(s, StoredCase) for s in stored)
    assert [s.name for s in stored] == [c.name for c in cases] and stored[1].stats == cases[1].stats
    assert isinstance(stored[0].images, np.memmap)  # read lazily, not held
    np.testing.assert_array_equal(stored[2].raters, cases[2].raters)
    for a, b in zip(batches(cases), batches(stored)):
        for in_memory, read_lazily in zip(a, b):
            np.testing.assert_array_equal(in_memory.numpy(), read_lazily.numpy())
    assert len(stored[0].crop_centres().disputed) > 0  # the disputed rim is sampled on purpose


def test_a_case_whose_writing_was_cut_short_is_not_taken_as_cached(tmp_path):
    store_case(tmp_path, "k", synthetic_case(0))
    (tmp_path / "k.centres.npz").unlink()  # the last file written: as if killed just before it
    assert stored_case(tmp_path, "k") is None
    again = phantom_cases([3], spacing=4, model_spacing=4.0, cache_dir=tmp_path)
    assert isinstance(again[0], StoredCase) and not list(tmp_path.glob(".*tmp*"))


def test_a_cache_of_the_earlier_format_is_moved_into_the_store(tmp_path):
    fresh = phantom_cases([3], spacing=4, model_spacing=4.0)[0]
    key = "phantom-v1-s3-4mm"  # the key generate_phantom_cases looks up (generator v1, standard domain)
    np.savez(
        tmp_path / f"{key}.npz",
        name=fresh.name,
        images=fresh.images,
        raters=fresh.raters,
        **{f"stats_{m}": np.array(v) for m, v in fresh.stats.items()},
    )
    moved = phantom_cases([3], spacing=4, model_spacing=4.0, cache_dir=tmp_path)[0]
    assert isinstance(moved, StoredCase) and not (tmp_path / f"{key}.npz").exists()
    np.testing.assert_array_equal(moved.images, fresh.images)


def test_labelled_folders_are_prepared_once_and_again_when_their_files_change(tmp_path, monkeypatch):
    folder = tmp_path / "BraTS-GLI-00001-000"
    labels = np.zeros((24, 24, 16), np.uint8)
    labels[8:16, 8:16, 5:11] = 2
    paths = write_brats_folder(folder, shape=(24, 24, 16), labels=labels)
    store = tmp_path / "store"
    first = folder_cases([folder], 2.0, store)[0]
    assert isinstance(first, StoredCase) and first.n_raters == 1

    import napari_entrust.training.cases as cases_module

    def refuse(*a, **k):
        raise AssertionError("a cached case was read from its folder again")

    with monkeypatch.context() as m:
        m.setattr(cases_module, "load_case", refuse)
        assert folder_cases([folder], 2.0, store)[0].key == first.key
    seg = paths["seg"]
    os.utime(seg, ns=(seg.stat().st_atime_ns, seg.stat().st_mtime_ns + 10**9))  # the label map was edited
    again = folder_cases([folder], 2.0, store)[0]
    assert again.key != first.key and again.name == first.name


def test_workers_give_reproducible_batches_and_none_equals_the_plain_sampler(tmp_path):
    cases = [store_case(tmp_path, f"k{i}", synthetic_case(i)) for i in range(3)]
    args = {"context": 2, "crop": 16, "conflict_fraction": 0.3}

    def take(workers, n=5):
        it = crop_batches(CropBatches(cases, 3, 2, seed=11, **args), workers)
        return [next(it)[0].numpy() for _ in range(n)]

    plain = CropSampler(cases, seed=11, **args)
    expected = []
    for i in range(5):
        if i and i % 2 == 0:
            plain.new_epoch()
        expected.append(plain.batch(3)[0].numpy())
    np.testing.assert_array_equal(np.stack(take(0)), np.stack(expected))
    two = take(2)
    np.testing.assert_array_equal(np.stack(two), np.stack(take(2)))
    assert not np.array_equal(two[0], two[1])  # the two workers draw different crops


@pytest.mark.parametrize("n_cases", [4, 5])
def test_each_rank_draws_from_its_own_share_of_the_cases(n_cases):
    cases = list(range(n_cases))
    shares = [rank_share(cases, r, 2, seed=0) for r in (0, 1)]
    assert set(shares[0]) | set(shares[1]) == set(cases)
    assert len(shares[0]) == len(shares[1]) == (n_cases + 1) // 2  # padded to equal length when odd
    if n_cases % 2 == 0:
        assert not set(shares[0]) & set(shares[1])
    assert rank_share(cases, 0, 1, seed=0) == cases
