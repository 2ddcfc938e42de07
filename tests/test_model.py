"""EnFuse, the sampler, TrustMap statistics, checkpoints and the engine, on a tiny random model."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_entrust import engine
from napari_entrust.checkpoint import ModelBundle, load_checkpoint, save_checkpoint
from napari_entrust.config import ModelConfig, SamplingConfig
from napari_entrust.diffusion import Schedule, sample, slice_noise
from napari_entrust.errors import Cancelled, EntrustError
from napari_entrust.labels import REGIONS, from_regions, in_region, region_votes
from napari_entrust.model import CalibrationHead, EnTrustNet, cross_covariance, hsic
from napari_entrust.normalize import head_mask
from napari_entrust.outputs import write_prediction
from napari_entrust.trust import binary_entropy, trust_statistics, trustmap

TINY = ModelConfig(encoder_channels=(4, 8), feature_channels=4, consensus_channels=4, specific_channels=2,
                   conflict_channels=2, denoiser_channels=8, denoiser_dilations=(1, 2))
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny() -> ModelBundle:
    torch.manual_seed(0)
    net, head = EnTrustNet(TINY).eval(), CalibrationHead().eval()
    return ModelBundle(net, head, TINY, Schedule(TINY), Path("tiny"), "0" * 64)


def _cond(bundle, b=2, h=12, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((b, 4, TINY.in_slices, h, w), generator=g)
    with torch.no_grad():
        return bundle.net.features(x).condition()


def _noise(seed, zs, steps, k, shape):
    return torch.stack([slice_noise(seed, z, steps, k, shape) for z in zs])


def test_hypotheses_are_seeded_and_independent_of_batching(tiny):
    cond = _cond(tiny)
    both = sample(tiny.net, tiny.schedule, cond, _noise(3, [0, 1], 5, 4, (12, 16)))
    alone = sample(tiny.net, tiny.schedule, cond[1:], _noise(3, [1], 5, 4, (12, 16)))
    torch.testing.assert_close(both.probs[1:], alone.probs)
    again = sample(tiny.net, tiny.schedule, cond, _noise(3, [0, 1], 5, 4, (12, 16)))
    torch.testing.assert_close(both.probs, again.probs)
    other = sample(tiny.net, tiny.schedule, cond, _noise(4, [0, 1], 5, 4, (12, 16)))
    assert not torch.allclose(both.probs, other.probs)
    assert both.probs.shape == (2, 4, 3, 12, 16)
    assert not torch.allclose(both.probs[:, 0], both.probs[:, 1])  # K hypotheses differ


def test_known_voxels_are_held_fixed_in_every_hypothesis(tiny):
    cond = _cond(tiny)
    g = torch.Generator().manual_seed(1)
    known = torch.rand((2, 3, 12, 16), generator=g) < 0.3
    values = (torch.rand((2, 3, 12, 16), generator=g) < 0.5).float()
    hyp = sample(tiny.net, tiny.schedule, cond, _noise(0, [0, 1], 6, 5, (12, 16)), known=known, known_values=values)
    fixed = hyp.probs.permute(1, 0, 2, 3, 4)[:, known]
    assert torch.equal(fixed, values[known].expand_as(fixed))
    # next to fixed voxels p̄'s first-step term is the hypotheses' mean: the first step, from noise, has
    # not seen the fixed values
    torch.testing.assert_close(hyp.first_step, hyp.probs.mean(1))


def test_probing_and_cancellation(tiny):
    cond = _cond(tiny)
    hyp = sample(tiny.net, tiny.schedule, cond, _noise(0, [0, 1], 6, 3, (12, 16)), probe_strength=0.5, probe_steps=2)
    assert hyp.probe_plus.shape == (2, 3, 12, 16) and not torch.allclose(hyp.probe_plus, hyp.probe_minus)
    plain = sample(tiny.net, tiny.schedule, cond, _noise(0, [0, 1], 6, 3, (12, 16)))
    assert plain.probe_plus is None
    calls = []
    with pytest.raises(Cancelled):
        sample(tiny.net, tiny.schedule, cond, _noise(0, [0, 1], 6, 3, (12, 16)),
               should_stop=lambda: calls.append(1) or len(calls) > 2)
    assert len(calls) == 3  # stopped at the third step, not at the end


def test_first_step_prediction_is_the_noise_free_part_of_the_hypotheses_mean(tiny):
    """p̄'s first-step term depends on the starting noise only, never on the noise of later steps."""
    cond = _cond(tiny)
    noise = _noise(0, [0, 1], 6, 4, (12, 16))
    hyp = sample(tiny.net, tiny.schedule, cond, noise, probe_strength=0.5, probe_steps=2)
    later = noise.clone()
    later[:, 2:] = _noise(9, [0, 1], 6, 4, (12, 16))[:, 2:]
    other = sample(tiny.net, tiny.schedule, cond, later, probe_strength=0.5, probe_steps=2)
    torch.testing.assert_close(hyp.first_step, other.first_step)
    assert not torch.allclose(hyp.probs, other.probs)
    one_step = sample(tiny.net, tiny.schedule, cond, noise[:, :2])  # the first step is the last
    torch.testing.assert_close(one_step.first_step, one_step.probs.mean(1))
    cf = torch.zeros((2, 12, 16))
    stats = trust_statistics(hyp.probs, hyp.probe_plus, hyp.probe_minus, cf, 0.5, hyp.first_step)
    torch.testing.assert_close(stats[:, :, 0], (hyp.probs.mean(1) + hyp.first_step) / 2)


def test_trust_statistics_match_hand_computed_values():
    confident_split = torch.tensor([0.0, 1.0]).reshape(1, 2, 1, 1, 1).expand(1, 2, 3, 1, 1)  # hypotheses disagree
    coin = torch.full((1, 2, 3, 1, 1), 0.5)  # every hypothesis unsure
    cf = torch.zeros((1, 1, 1))
    s = trust_statistics(confident_split, None, None, cf, 0.0)[0, 0, :, 0, 0]
    assert s[0] == pytest.approx(0.5) and s[1] == pytest.approx(1.0, abs=1e-4)
    assert s[2] == pytest.approx(0.0, abs=1e-4) and s[3] == pytest.approx(1.0, abs=1e-4)  # all epistemic
    s = trust_statistics(coin, None, None, cf, 0.0)[0, 0, :, 0, 0]
    assert s[2] == pytest.approx(1.0, abs=1e-4) and s[3] == pytest.approx(0.0, abs=1e-4)  # all aleatoric
    plus, minus = torch.full((1, 3, 1, 1), 0.7), torch.full((1, 3, 1, 1), 0.5)
    s = trust_statistics(coin, plus, minus, cf, 0.2)[0, 0, :, 0, 0]
    assert s[4] == pytest.approx(0.5)  # |0.7 − 0.5| / (2 · 0.2)
    assert binary_entropy(torch.tensor(0.5)) == pytest.approx(1.0)
    np.testing.assert_allclose(trustmap(np.array([[0.5], [0.9], [0.0]])), [1.0])
    np.testing.assert_allclose(trustmap(np.array([[0.95], [0.9], [0.0]])), [0.2], atol=1e-6)


def test_calibration_head_keeps_the_mask_and_the_uncertainty_order_and_learns_sharpness():
    from napari_entrust.distributed import DistributedContext
    from napari_entrust.training import TrainConfig, train_calibration

    head = CalibrationHead()
    p = torch.linspace(0.01, 0.99, 99)
    stats = torch.zeros(1, 3, 6, 1, 99)
    stats[:, :, 0] = p
    np.testing.assert_allclose(torch.sigmoid(head(stats))[0, :, 0].detach(), p.expand(3, -1), atol=1e-5)  # identity
    with torch.no_grad():
        head.raw_slopes.normal_(0.0, 2.0)  # any learned shape
    q = torch.sigmoid(head(stats))[0, :, 0].detach()
    assert torch.equal(q >= 0.5, (p >= 0.5).expand(3, -1))  # the mask does not move
    u_before, u_after = 1 - (2 * p - 1).abs(), 1 - (2 * q - 1).abs()
    order = torch.argsort(u_before)
    assert (torch.diff(u_after[:, order], dim=1) >= -1e-6).all()  # nor does the order of voxels by uncertainty
    # p̄ overconfident: outcomes at p̄ = 0.9 come true 70 % of the time, the head learns to soften it
    n = 4096
    stats = torch.zeros(n, 3, 6, 1, 1)
    stats[:, :, 0] = 0.9
    targets = (torch.rand(n, 3, 1, 1, generator=torch.Generator().manual_seed(0)) < 0.7).float()
    head = CalibrationHead()
    train_calibration(head, stats, targets, torch.ones(n, 1, 1), TrainConfig(calibration_iterations=600),
                      DistributedContext())
    assert torch.sigmoid(head(stats[:1]))[0, :, 0, 0].detach() == pytest.approx([0.7] * 3, abs=0.05)


def test_hsic_sees_the_nonlinear_dependence_cross_covariance_misses():
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-2, 2, 401)[:, None]  # symmetric: x and x² are exactly uncorrelated
    independent = x[torch.randperm(401, generator=g)]
    assert cross_covariance(x, x) > 0.9
    assert cross_covariance(x, x ** 2) < 1e-6  # uncorrelated ...
    assert hsic(x, x ** 2) > 5 * hsic(x, independent)  # ... but dependent, and HSIC says so


def test_enfuse_weights_are_a_distribution_and_conflict_is_flat_where_modalities_agree(tiny):
    f = torch.randn(1, 1, TINY.feature_channels, 8, 8).expand(1, 4, -1, -1, -1).contiguous()
    with torch.no_grad():
        feats = tiny.net.enfuse(f)
    torch.testing.assert_close(feats.weights.sum(1), torch.ones(1, 8, 8))
    # identical modalities: no dispersion, so F_cf carries no spatial structure
    assert torch.allclose(feats.conflict, feats.conflict[..., :1, :1].expand_as(feats.conflict), atol=1e-6)
    f2 = f.clone()
    f2[:, 3, :, 2:5, 2:5] += 3.0  # one modality disagrees in a square
    with torch.no_grad():
        feats2 = tiny.net.enfuse(f2)
    change = (feats2.conflict - feats.conflict).norm(dim=1)[0]
    assert change[2:5, 2:5].mean() > 10 * change[6:, 6:].mean()


@pytest.mark.parametrize("res_units", [0, 1])
def test_features_are_enfuse_of_the_encoders_as_the_design_writes_it(res_units):
    """The engine's path (EnFuse's 1×1 maps folded into each encoder's last layer, the dispersion as
    Σ w p² − F_c²) gives what the design states, computed here step by step from the encoders' f_m.
    With residual units the last layer is not linear and the plain path is taken."""
    torch.manual_seed(1)
    net = EnTrustNet(replace(TINY, encoder_res_units=res_units)).eval()
    ef = net.enfuse
    x = torch.randn(2, 4, TINY.in_slices, 16, 24)

    def conv(layer, t):
        return torch.nn.functional.conv2d(t, layer.weight, layer.bias)

    with torch.enable_grad():  # training: sums out of place, for autograd
        trained = net.features(x)
    with torch.no_grad():
        got = net.features(x)
        f = [enc(x[:, m]) for m, enc in enumerate(net.encoders)]
        w = torch.softmax(torch.cat([conv(ef.gate, fm) for fm in f], 1), 1)
        proj = [conv(ef.project_consensus, fm) for fm in f]
        consensus = sum(w[:, m:m + 1] * proj[m] for m in range(4))
        dispersion = sum(w[:, m:m + 1] * (proj[m] - consensus) ** 2 for m in range(4))
        specific = torch.stack([conv(ef.project_specific, fm) for fm in f], 1)
    for name, want in (("weights", w), ("consensus", consensus), ("specific", specific),
                       ("conflict", ef.phi(dispersion)), ("fused_logits", conv(ef.fused_head, consensus))):
        torch.testing.assert_close(getattr(got, name), want, atol=1e-4, rtol=1e-4, msg=name)
        torch.testing.assert_close(getattr(trained, name).detach(), want, atol=1e-4, rtol=1e-4, msg=name)


def test_denoiser_sampling_path_equals_the_training_path(tiny):
    """In sampling (one time step for the batch, no gradient) FiLM is folded into the norm and the
    activation runs in place; the logits must be those of the per-sample training path."""
    g = torch.Generator().manual_seed(3)
    cond_h = tiny.net.denoiser.condition(torch.randn(6, tiny.net.denoiser.cond_in.in_channels, 12, 16, generator=g))
    y = torch.randn(6, 3, 12, 16, generator=g)
    with torch.no_grad():
        fast = tiny.net.denoiser(y, torch.tensor([417]), cond_h)
    with torch.enable_grad():
        slow = tiny.net.denoiser(y, torch.full((6,), 417), cond_h)
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sees_specific", [True, False])
def test_denoiser_sees_the_specific_features_only_when_configured(sees_specific):
    torch.manual_seed(2)
    cfg = replace(TINY, denoiser_sees_specific=sees_specific)
    net = EnTrustNet(cfg).eval()
    cond = torch.randn(2, net.denoiser.cond_in.in_channels, 8, 8)
    changed = cond.clone()
    changed[:, cfg.consensus_channels:-cfg.conflict_channels] += 5.0  # only the F_u,m channels
    y = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out, out_changed = (net.denoiser(y, torch.tensor([500]), net.denoiser.condition(c)) for c in (cond, changed))
    assert torch.equal(out, out_changed) != sees_specific
    cf = cond.clone()
    cf[:, -cfg.conflict_channels:] += 5.0  # F_cf reaches the denoiser either way
    with torch.no_grad():
        assert not torch.equal(out, net.denoiser(y, torch.tensor([500]), net.denoiser.condition(cf)))


def test_region_votes_count_hypotheses_per_region():
    rng = np.random.default_rng(0)
    samples = rng.choice(np.array([0, 1, 2, 4], np.uint8), size=(7, 5, 6, 3))
    votes = region_votes(samples)
    for i, r in enumerate(REGIONS):
        np.testing.assert_array_equal(votes[i], in_region(samples, r).sum(0), err_msg=r)
    many = np.full((300, 2, 2, 2), 4, np.uint8)  # more hypotheses than a uint8 count holds
    assert region_votes(many).min() == 300


def test_sampling_options_are_validated():
    for bad in (dict(samples=0), dict(steps=0), dict(probe_strength=1.0), dict(eta=2.0), dict(probe_steps=20)):
        with pytest.raises(ValueError):
            SamplingConfig(**bad).validate()


# -- engine, on a fixed region of interest ---------------------------------------------------------

@pytest.fixture()
def fixed_roi(monkeypatch, phantom2):
    roi = np.zeros(phantom2.labels.shape, bool)
    roi[40:60, 50:70, 40:46] = True
    monkeypatch.setattr(engine, "region_of_interest", lambda fused, head: roi & head)
    return roi


def test_engine_outputs_are_complete_deterministic_and_chunking_independent(tiny, phantom2, fixed_roi, tmp_path):
    case = phantom2.to_case()
    opts = SamplingConfig(samples=3, steps=4, probe_steps=1, seed=5)
    progress = []
    a = engine.predict_case(case, tiny, opts, memory_mb=4096, progress=lambda f, m: progress.append(f))
    b = engine.predict_case(case, tiny, opts, memory_mb=64)  # many small chunks
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    for name in ("mask", "samples"):  # label maps: identical
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("prob", "trustmap", "entropy", "mutual_info", "probe", "conflict"):  # floats: batch-size rounding only
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-5, err_msg=name)
    assert a.samples.shape == (3, *case.shape) and a.prob.shape == (3, *case.shape)
    majority = from_regions(np.stack([in_region(a.samples, r).mean(0) > 0.5 for r in REGIONS]))
    np.testing.assert_array_equal(a.mask, majority)  # the mask is the hypotheses' majority vote per region
    assert np.all(a.trustmap[~fixed_roi] == 0) and 0 <= a.trustmap.min() and a.trustmap.max() <= 1
    total, head = sum(a.weights.values()), head_mask(case.images)
    np.testing.assert_allclose(total[head], 1.0, atol=1e-5)  # a distribution over modalities in the head ...
    assert not total[~head].any() and not a.consensus[~head].any()  # ... and no feature maps off it
    files = write_prediction(case, a, tmp_path / "out")
    assert len(files) == 18
    mask = nib.load(files["mask"])
    np.testing.assert_allclose(mask.affine, phantom2.affine)
    assert nib.load(files["samples"]).shape == (*case.shape, 3)
    summary = json.loads(files["summary"].read_text())
    assert summary["parameters"]["samples"] == 3 and summary["model"]["sha256"] == "0" * 64
    assert set(summary["timings_s"]) >= {"encode_s", "sample_s", "total_s"}
    with pytest.raises(EntrustError, match="already exists"):
        write_prediction(case, a, tmp_path / "out")


def test_engine_can_be_cancelled(tiny, phantom2, fixed_roi):
    calls = []
    with pytest.raises(Cancelled):
        engine.predict_case(phantom2.to_case(), tiny, SamplingConfig(samples=2, steps=3),
                            should_stop=lambda: calls.append(1) or len(calls) > 3)


# -- checkpoints ------------------------------------------------------------------------------------

def test_checkpoint_round_trip_and_bad_files(tiny, tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    digest = save_checkpoint(path, tiny.net, tiny.calibration, training={"note": "test"})
    loaded = load_checkpoint(path)
    assert loaded.sha256 == digest and loaded.config == TINY and loaded.training == {"note": "test"}
    for k, v in tiny.net.state_dict().items():
        torch.testing.assert_close(loaded.net.state_dict()[k], v)
    with pytest.raises(EntrustError, match="already exists"):
        save_checkpoint(path, tiny.net, tiny.calibration)
    truncated = tmp_path / "bad.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EntrustError, match="not a usable napari-entrust checkpoint"):
        load_checkpoint(truncated)
    pickled = tmp_path / "code.pt"
    torch.save({"config": TINY.to_dict(), "net": {}, "payload": print}, pickled)  # arbitrary object: refused
    with pytest.raises(EntrustError, match="not a usable"):
        load_checkpoint(pickled)
    with pytest.raises(EntrustError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    # a bundled model whose bytes do not match the recorded sha256 is refused
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "entrust_brats_phantom.pt").write_bytes(path.read_bytes())
    (resources / "SHA256SUMS").write_text("0" * 64 + "  entrust_brats_phantom.pt\n")
    monkeypatch.setattr("napari_entrust.checkpoint.resources_dir", lambda: resources)
    with pytest.raises(EntrustError, match="does not match the recorded"):
        load_checkpoint(resources / "entrust_brats_phantom.pt")


def test_distributed_training_keeps_ranks_identical(tmp_path):
    """Two CPU processes (gloo) train a tiny model for a few steps; both end with the same weights."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**__import__("os").environ,
                                                                                   "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["first_loss"] != ranks[1]["first_loss"]  # each rank trained on its own crops
    assert ranks[0]["weights_sha256"] != ranks[0]["initial_sha256"]  # and the weights did move
