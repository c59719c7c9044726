"""A small real training run for the trainer's subprocess tests (resume after kill -9, DDP vs accumulation).

An MLP classifies 16-dim points labelled by a fixed random "teacher" network (4 classes). Batches come from a
tiny deterministic sampler with the BucketBatchSampler contract: the epoch's shuffled batch list is shared by
all ranks, rank r takes batches r::world_size, and a rank that runs short gets [] (a dummy batch).

    python tests/support/train_toy.py --run-dir DIR [--update-freq N] [--epochs N] ...
    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/support/train_toy.py --run-dir DIR
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from speechkd.config import RunConfig, option
from speechkd.runs import Run
from speechkd.train import distributed as dist
from speechkd.train.config import TrainConfig
from speechkd.train.reproducibility import seed_everything
from speechkd.train.trainer import Trainer

DIM, CLASSES = 16, 4


@dataclasses.dataclass
class ToyConfig(RunConfig):
    n_train: int = option(3000, "training examples")
    n_valid: int = option(500, "validation examples")
    batch_size: int = option(32, "examples per batch")
    hidden: int = option(256, "MLP width")
    dropout: float = option(0.1, "dropout (exercises the RNG streams)")
    noise: float = option(0.05, "input noise added when a batch is collated (exercises seeded collation)")
    train: TrainConfig = option(TrainConfig, "trainer")


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    teacher = np.random.RandomState(1234)  # the labelling function is the same for every split
    w1, w2 = teacher.randn(DIM, 32), teacher.randn(32, CLASSES)
    x = np.random.RandomState(seed).randn(n, DIM).astype(np.float32)
    y = (np.maximum(x @ w1, 0) @ w2).argmax(1)
    return torch.from_numpy(x), torch.from_numpy(y).long()


class ToySampler:
    """Same epoch_batches semantics as data/batching.BucketBatchSampler: list of index lists for one rank."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world_size: int):
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world_size

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = np.random.RandomState(self.seed * 1000 + epoch).permutation(self.n).tolist()
        batches = [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        mine = batches[self.rank::self.world]
        per_rank = -(-len(batches) // self.world)
        return mine + [[] for _ in range(per_rank - len(mine))]


class ToyTask:
    def __init__(self, cfg: ToyConfig):
        self.cfg = cfg
        self.x, self.y = make_data(cfg.n_train, seed=1)
        self.vx, self.vy = make_data(cfg.n_valid, seed=2)

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list:
        return ToySampler(self.cfg.n_train, self.cfg.batch_size, self.cfg.seed, rank, world_size).epoch_batches(epoch)

    def load_batch(self, spec: list[int]) -> dict:
        index = torch.tensor(spec)
        x = self.x[index]
        return {"x": x + self.cfg.noise * torch.randn_like(x), "y": self.y[index]}

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, float, dict]:
        logits = model(batch["x"])
        loss = F.cross_entropy(logits.float(), batch["y"], reduction="sum")
        correct = (logits.argmax(1) == batch["y"]).sum().item()
        return loss, len(batch["y"]), {"correct": correct}

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        logits = model(self.vx).float()
        return {"valid_loss": F.cross_entropy(logits, self.vy).item(),
                "valid_acc": (logits.argmax(1) == self.vy).float().mean().item()}


def build_model(cfg: ToyConfig) -> torch.nn.Module:
    h = cfg.hidden
    return torch.nn.Sequential(torch.nn.Linear(DIM, h), torch.nn.ReLU(), torch.nn.Dropout(cfg.dropout),
                               torch.nn.Linear(h, h), torch.nn.ReLU(), torch.nn.Dropout(cfg.dropout),
                               torch.nn.Linear(h, CLASSES))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--update-freq", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--max-updates", type=int, default=0)
    ap.add_argument("--save-interval", type=int, default=10, help="mid-epoch checkpoint every N updates")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--num-workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", choices=["cpu", "auto", "cuda"], default="cpu")
    ap.add_argument("--amp", choices=["none", "auto", "bf16"], default="none")
    ap.add_argument("--progress", action="store_true", help="show the tqdm bar")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir).resolve()
    train = TrainConfig(optimizer="adam", lr=2e-3, scheduler="inverse_sqrt", warmup_updates=20,
                        max_epochs=args.epochs, max_updates=args.max_updates, update_freq=args.update_freq,
                        clip_norm=5.0, amp=args.amp, device=args.device, best_metric="valid_loss",
                        save_interval_updates=args.save_interval, keep_last_epochs=2, log_interval=1,
                        num_workers=args.num_workers, progress=args.progress, tensorboard=False,
                        find_unused_parameters=False)
    cfg = ToyConfig(name=run_dir.name, profile=run_dir.parent.name, runs_dir=str(run_dir.parent.parent),
                    n_train=args.n_train, hidden=args.hidden, dropout=args.dropout, train=train)
    dist.init(args.device)
    run = Run(cfg, stage="train-toy")
    if run.is_done():
        print(json.dumps(run.metrics(), sort_keys=True))
        return
    run.start()  # rank 0 prepares the directory, the others wait
    seed_everything(cfg.seed)
    trainer = Trainer(cfg.train, run, build_model(cfg), ToyTask(cfg))
    metrics = trainer.fit()
    run.finish(metrics)  # every rank: rank 0 writes metrics.json and DONE, the others wait for it
    if dist.is_main():
        print(json.dumps(metrics, sort_keys=True))
    dist.cleanup()


if __name__ == "__main__":
    main()
