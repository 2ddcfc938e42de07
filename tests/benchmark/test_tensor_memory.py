"""The paper's memory measure: peak live tensor bytes, which RSS cannot show on a CPU."""

import torch

from napari_entrust.benchmark.tensor_memory import peak_tensor_bytes, tensor_bytes

MB = 2**20


def _held_together():
    a = torch.ones(1024, 1024)  # 4 MB
    b = torch.ones(2048, 1024)  # 8 MB, while a is live
    return float(a[0, 0] + b[0, 0])


def _one_after_another():
    for _ in range(3):
        a = torch.ones(2048, 1024)  # 8 MB, freed before the next
        del a
    return 1.0


def test_the_peak_counts_tensors_live_at_once_not_all_ever_made():
    result, together = peak_tensor_bytes(_held_together)
    assert result == 2.0
    assert 12 * MB <= together < 12.5 * MB
    _, sequential = peak_tensor_bytes(_one_after_another)
    assert 8 * MB <= sequential < 8.5 * MB


def test_tensors_held_before_the_call_are_not_in_its_peak_but_weights_are_counted_once():
    net = torch.nn.Linear(256, 256)
    _, peak = peak_tensor_bytes(lambda: net.weight.sum())
    assert peak < 0.01 * MB
    assert tensor_bytes([net, net]) == (256 * 256 + 256) * 4
