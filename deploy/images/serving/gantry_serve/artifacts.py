"""Where each framework's model lives in the model directory. Checked before any
framework is imported, so a missing artifact is reported in milliseconds."""

import os


class ArtifactMissing(Exception):
    """The model directory does not hold what the framework needs."""


def _is_saved_model(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb")) or os.path.isfile(
        os.path.join(path, "saved_model.pbtxt")
    )


def locate(framework, model_dir, model_name):
    """The path the framework's loader opens, or ArtifactMissing saying what was expected."""
    if not os.path.isdir(model_dir):
        raise ArtifactMissing(f"model directory {model_dir} does not exist")
    if framework == "TENSORFLOW":
        if _is_saved_model(model_dir):
            return model_dir
        # TF Serving's layout: numbered version directories; the highest wins.
        versions = [
            d for d in os.listdir(model_dir)
            if d.isdigit() and _is_saved_model(os.path.join(model_dir, d))
        ]
        if versions:
            return os.path.join(model_dir, max(versions, key=int))
        raise ArtifactMissing(
            f"no TensorFlow SavedModel (saved_model.pb) in {model_dir} or its numbered subdirectories"
        )
    if framework == "PYTORCH":
        path = os.path.join(model_dir, f"{model_name}.pt")
        if os.path.isfile(path):
            return path
        raise ArtifactMissing(
            f"no TorchScript file {path} (a PyTorch model's name must equal its .pt file name)"
        )
    if framework == "ONNX":
        path = os.path.join(model_dir, "model.onnx")
        if os.path.isfile(path):
            return path
        found = sorted(f for f in os.listdir(model_dir) if f.endswith(".onnx"))
        if len(found) == 1:
            return os.path.join(model_dir, found[0])
        if found:
            raise ArtifactMissing(
                f"{len(found)} .onnx files in {model_dir} and no model.onnx: cannot choose"
            )
        raise ArtifactMissing(f"no model.onnx (or single *.onnx) in {model_dir}")
    for file in ("model.joblib", "model.pkl"):
        path = os.path.join(model_dir, file)
        if os.path.isfile(path):
            return path
    raise ArtifactMissing(f"no model.joblib or model.pkl in {model_dir}")
