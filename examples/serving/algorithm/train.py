"""Serving example: a small PyTorch classifier of Fisher's iris data, saved so that
Gantry's PyTorch serving image can load it (docs/serving.md):

- the dataset is read from EM_DATASET_TRAIN (iris.csv),
- --epochs/--lr arrive as arguments (and EM_HP_* variables),
- the model is saved into EM_MODEL_DIR as TorchScript named after the model: a model
  created from this training must be named "iris" (the guide's rule for PyTorch).
"""

import argparse
import csv
import os

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=300)
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--model-name", default="iris")
args = parser.parse_args()

with open(os.path.join(os.environ["EM_DATASET_TRAIN"], "iris.csv")) as f:
    rows = list(csv.DictReader(f))
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
x = torch.tensor([[float(r[k]) for k in features] for r in rows])
y = torch.tensor([int(r["species"]) for r in rows])


class Iris(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, inputs):
        return torch.softmax(self.linear(inputs), dim=1)


torch.manual_seed(0)
model = Iris()
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
loss_fn = torch.nn.CrossEntropyLoss()
for epoch in range(args.epochs):
    optimizer.zero_grad()
    logits = model.linear(x)
    loss = loss_fn(logits, y)
    loss.backward()
    optimizer.step()
    if (epoch + 1) % 50 == 0 or epoch == 0:
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
        print(f"epoch={epoch + 1} loss={loss.item():.4f} accuracy={accuracy:.3f}", flush=True)

model.eval()
path = os.path.join(os.environ["EM_MODEL_DIR"], f"{args.model_name}.pt")
torch.jit.trace(model, x[:1]).save(path)
print(f"model saved to {path}", flush=True)
