"""Run under torchrun by test_distributed.py: a few DDP training steps of a tiny model on cases read
lazily from an on-disk store (both ranks write it, as ranks of a real run would), then report the weights."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from napari_entrust.inference.distributed import distributed_context
from napari_entrust.model.entrust_net import EnTrustNet
from napari_entrust.progress import run_to_end
from napari_entrust.training.backbone import train_backbone
from napari_entrust.training.case_store import StoredCase, store_case
from napari_entrust.training.cases import TrainingCase
from napari_entrust.training.crop_loader import rank_share
from napari_entrust.training.train_config import TrainConfig
from tests.helpers import TINY


def weights_sha256(net: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def synthetic_cases(store: Path) -> list[StoredCase]:
    rng = np.random.default_rng(0)
    cases = []
    for i in range(4):
        images = rng.uniform(0.2, 1.0, (4, 24, 24, 6)).astype(np.float32)
        labels = np.zeros((24, 24, 6), np.uint8)
        labels[8:16, 8:16, 1:5] = 2
        labels[10:14, 10:14, 2:4] = 4
        raters = np.stack([labels, np.where(labels == 4, 1, labels)]).astype(np.uint8)
        cases.append(store_case(store, f"synthetic-{i}", TrainingCase(f"synthetic-{i}", images, raters, {})))
    return cases


def main(out: Path) -> None:
    torch.set_num_threads(1)
    ctx = distributed_context(torch.device("cpu"))
    torch.manual_seed(0)
    net = EnTrustNet(TINY)
    initial = weights_sha256(net)
    tc = TrainConfig(iterations=4, batch_size=2, crop=16, log_every=1)
    cases = synthetic_cases(out / "store")
    history = run_to_end(train_backbone(net, cases, tc, ctx))
    report = {
        "rank": ctx.rank,
        "world": ctx.world,
        "initial_sha256": initial,
        "weights_sha256": weights_sha256(net),
        "first_loss": history[0]["loss"],
        "share": [c.name for c in rank_share(cases, ctx.rank, ctx.world, tc.seed)],
    }
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(report))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
