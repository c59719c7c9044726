"""Is the embedded FSC-like corpus sized right? A text classifier should be near-perfect, a small acoustic
student clearly not (the papers' KD effects need that room). Uses the core pieces only: fbank, CMVN,
bucketed batching and the trainer.

    .venv/bin/python scripts/check_embedded_sizing.py data/embedded/fsc EPOCHS HIDDEN [RUNS_DIR]
"""
import dataclasses
import sys
import time
from pathlib import Path
import numpy as np, torch, torch.nn as nn
from speechkd.config import RunConfig
from speechkd.data.manifests import read_slu_csv, read_intent_dict
from speechkd.data.audio import read_audio
from speechkd.features.fbank import fbank
from speechkd.features.cmvn import utterance_cmvn
from speechkd.data.batching import BucketBatchSampler, collate_features
from speechkd.runs import Run
from speechkd.train.config import TrainConfig
from speechkd.train.trainer import Trainer
from speechkd.train.reproducibility import seed_everything

root = Path(sys.argv[1]); epochs = int(sys.argv[2]); hidden = int(sys.argv[3])
runs_dir = sys.argv[4] if len(sys.argv) > 4 else "runs"
intents = read_intent_dict(root / "intent_dict"); idx = {k: i for i, k in enumerate(intents)}
t0 = time.time()
data = {}
for split in ("train", "valid", "test"):
    ex = read_slu_csv(root / f"{split}.csv")
    feats = [torch.from_numpy(utterance_cmvn(fbank(read_audio(root / e.path)))) for e in ex]
    data[split] = (feats, [idx[e.intent] for e in ex], [e.transcript for e in ex])
print("features", round(time.time() - t0, 1), "s", flush=True)

# text stand-in for the teacher: bag of words + a one-hidden-layer MLP
vocab = {w: i for i, w in enumerate(sorted({w for t in data["train"][2] for w in t.lower().replace(",", "").split()}))}
def bow(ts):
    x = torch.zeros(len(ts), len(vocab))
    for i, t in enumerate(ts):
        for w in t.lower().replace(",", "").split():
            if w in vocab: x[i, vocab[w]] += 1
    return x
torch.manual_seed(0)
lin = nn.Sequential(nn.Linear(len(vocab), 128), nn.ReLU(), nn.Linear(128, len(intents)))
opt = torch.optim.Adam(lin.parameters(), 1e-2)
xtr, ytr = bow(data["train"][2]), torch.tensor(data["train"][1])
for _ in range(200):
    opt.zero_grad(); nn.functional.cross_entropy(lin(xtr), ytr).backward(); opt.step()
for s in ("valid", "test"):
    acc = (lin(bow(data[s][2])).argmax(1) == torch.tensor(data[s][1])).float().mean().item()
    print(f"text BOW-MLP {s} acc {acc:.4f}")

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(80, hidden, 5, stride=2, padding=2), nn.ReLU(),
                                  nn.Conv1d(hidden, hidden, 5, stride=2, padding=2), nn.ReLU())
        self.rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, len(intents))
    def forward(self, x, lengths):
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        h, _ = self.rnn(h)
        return self.out(h.max(1).values)

class Task:
    def __init__(self):
        self.sampler = BucketBatchSampler([f.shape[0] for f in data["train"][0]], max_tokens=6000, seed=1)
    def train_batches(self, epoch, rank, world):
        return self.sampler.epoch_batches(epoch)
    def load_batch(self, spec):
        x, l = collate_features([data["train"][0][i] for i in spec])
        return x, l, torch.tensor([data["train"][1][i] for i in spec])
    def loss(self, model, batch):
        x, l, y = batch
        return nn.functional.cross_entropy(model(x, l), y, reduction="sum"), len(y), {}
    def evaluate(self, model, split):
        feats, ys, _ = data[split]; correct = 0
        for i in range(0, len(feats), 64):
            x, l = collate_features(feats[i:i+64]); correct += (model(x, l).argmax(1) == torch.tensor(ys[i:i+64])).sum().item()
        return correct / len(feats)
    def validate(self, model):
        return {"valid_acc": self.evaluate(model, "valid")}

@dataclasses.dataclass
class C(RunConfig):
    pass
cfg = C(name=f"sizing_{root.parent.name}_{root.name}_e{epochs}_h{hidden}", runs_dir=runs_dir)
seed_everything(1)
run = Run(cfg, "sizing").start()
model = Model(); task = Task()
print("student params", sum(p.numel() for p in model.parameters()))
tc = TrainConfig(optimizer="adam", lr=2e-3, max_epochs=epochs, best_metric="valid_acc", maximize=True, progress=False, tensorboard=False)
t0 = time.time(); m = Trainer(tc, run, model, task).fit()
print("train", round(time.time() - t0, 1), "s", {k: v for k, v in m.items() if "acc" in k})
print("test acc (last)", task.evaluate(model, "test"))
