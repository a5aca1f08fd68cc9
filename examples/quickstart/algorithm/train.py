"""Quick-start training: fits y = w*x + b to the dataset by gradient descent, in plain
Python (no packages to install), following the EasyMaker contract:

- hyperparameters arrive as --epochs/--lr arguments (and EM_HP_* variables),
- the dataset is read from EM_DATASET_TRAIN,
- the model is saved into EM_MODEL_DIR (Gantry copies it to the output path),
- a checkpoint goes to EM_CHECKPOINT_DIR.
"""

import argparse
import csv
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=50)
parser.add_argument("--lr", type=float, default=0.01)
args = parser.parse_args()

with open(os.path.join(os.environ["EM_DATASET_TRAIN"], "points.csv")) as f:
    points = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]

w, b = 0.0, 0.0
for epoch in range(args.epochs):
    grad_w = sum(2 * (w * x + b - y) * x for x, y in points) / len(points)
    grad_b = sum(2 * (w * x + b - y) for x, y in points) / len(points)
    w, b = w - args.lr * grad_w, b - args.lr * grad_b
    loss = sum((w * x + b - y) ** 2 for x, y in points) / len(points)
    print(f"epoch={epoch + 1} loss={loss:.5f} w={w:.4f} b={b:.4f}", flush=True)

with open(os.path.join(os.environ["EM_MODEL_DIR"], "model.json"), "w") as f:
    json.dump({"w": w, "b": b}, f)
with open(os.path.join(os.environ["EM_CHECKPOINT_DIR"], "last_epoch.txt"), "w") as f:
    f.write(str(args.epochs))
print("model saved", flush=True)
