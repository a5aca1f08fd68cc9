"""One adapter per framework, each with the same three calls:
predict(instances) -> JSON-able list (V1), infer(tensors) -> [Tensor] (V2) and
metadata() -> dict. A framework is imported only when its model is loaded, so each
image needs only its own. BadInput means HTTP 400; anything else a model raises is 500.
"""

import numpy as np

from .protocol import (
    BadInput,
    Tensor,
    as_array,
    check_shape,
    datatype_of,
    single_input,
    v1_columns,
)

# V1 returns this output of a multi-output ONNX model when it has one (skl2onnx
# classifiers: label + probabilities), otherwise the first output.
PROBABILITY_OUTPUTS = ("probabilities", "output_probability")


class SklearnModel:
    platform = "scikit-learn"

    def __init__(self, path):
        import joblib

        self.model = joblib.load(path)
        self.n_features = getattr(self.model, "n_features_in_", None)
        # Classifiers answer with per-class probabilities, as the guide's iris example.
        self.proba = hasattr(self.model, "predict_proba")

    def _run(self, x):
        if x.ndim != 2:
            raise BadInput(f"expected rows of features (2 dimensions), got shape {list(x.shape)}")
        if self.n_features is not None and x.shape[1] != self.n_features:
            raise BadInput(f"each row must have {self.n_features} features, got {x.shape[1]}")
        try:
            return np.asarray(self.model.predict_proba(x) if self.proba else self.model.predict(x))
        except (ValueError, TypeError) as e:
            raise BadInput(f"the model rejected the input: {e}") from None

    def predict(self, instances):
        return self._run(as_array(instances, what="instances")).tolist()

    def infer(self, tensors):
        return [Tensor("predictions", self._run(single_input(tensors)))]

    def metadata(self):
        shape = [-1, self.n_features if self.n_features is not None else -1]
        return {
            "inputs": [{"name": "input", "datatype": "FP64", "shape": shape}],
            "outputs": [{"name": "predictions", "datatype": "FP64", "shape": [-1, -1]}],
        }


ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def _onnx_value(value):
    """An output as an array; ZipMap's list of {class: probability} becomes per-class
    rows in class order."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = sorted(value[0])
        return np.asarray([[row[k] for k in keys] for row in value])
    return np.asarray(value)


class OnnxModel:
    platform = "onnxruntime"

    def __init__(self, path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.v1_output = next((n for n in PROBABILITY_OUTPUTS if n in self.outputs), self.outputs[0])

    def _feed(self, arrays):
        feed = {}
        for spec in self.inputs:
            if spec.name not in arrays:
                raise BadInput(f"missing input '{spec.name}'")
            dtype = ONNX_TYPES.get(spec.type)
            array = arrays[spec.name]
            if dtype is not None and array.dtype != dtype:
                array = as_array(array, dtype, f"input '{spec.name}'")
            check_shape(spec.name, array, spec.shape)
            feed[spec.name] = array
        return feed

    def _run(self, arrays, names=None):
        values = self.session.run(names, self._feed(arrays))
        return [_onnx_value(v) for v in values]

    def predict(self, instances):
        if len(self.inputs) == 1:
            arrays = {self.inputs[0].name: as_array(instances, what="instances")}
        else:
            columns = v1_columns(instances, [i.name for i in self.inputs])
            arrays = {k: as_array(v, what=f"input '{k}'") for k, v in columns.items()}
        return self._run(arrays, [self.v1_output])[0].tolist()

    def infer(self, tensors):
        if len(self.inputs) == 1:
            arrays = {self.inputs[0].name: single_input(tensors)}
        else:
            arrays = {t.name: t.array for t in tensors}
        return [Tensor(n, v) for n, v in zip(self.outputs, self._run(arrays))]

    def metadata(self):
        def describe(spec):
            dtype = ONNX_TYPES.get(spec.type)
            datatype = datatype_of(np.zeros(0, dtype)) if dtype else spec.type
            shape = [d if isinstance(d, int) else -1 for d in (spec.shape or [])]
            return {"name": spec.name, "datatype": datatype, "shape": shape}

        return {
            "inputs": [describe(i) for i in self.inputs],
            "outputs": [describe(o) for o in self.session.get_outputs()],
        }


class TensorflowModel:
    platform = "tensorflow_savedmodel"

    def __init__(self, path):
        import tensorflow as tf

        self.tf = tf
        self.loaded = tf.saved_model.load(path)  # the signature needs it kept alive
        if "serving_default" not in self.loaded.signatures:
            raise ValueError(f"the SavedModel in {path} has no serving_default signature")
        self.signature = self.loaded.signatures["serving_default"]
        self.input_specs = self.signature.structured_input_signature[1]
        self.output_specs = self.signature.structured_outputs

    def _run(self, arrays):
        feed = {}
        for name, spec in self.input_specs.items():
            if name not in arrays:
                raise BadInput(f"missing input '{name}'")
            array = as_array(arrays[name], spec.dtype.as_numpy_dtype, f"input '{name}'")
            if not spec.shape.is_compatible_with(array.shape):
                raise BadInput(f"input '{name}' must have shape {spec.shape}, got {list(array.shape)}")
            feed[name] = self.tf.constant(array)
        out = self.signature(**feed)
        return {name: value.numpy() for name, value in out.items()}

    def predict(self, instances):
        names = list(self.input_specs)
        if len(names) == 1:
            arrays = {names[0]: instances}
        else:
            arrays = v1_columns(instances, names)
        out = self._run(arrays)
        if len(out) == 1:
            return next(iter(out.values())).tolist()
        # Several outputs: TF Serving's row format, one object per instance.
        return [{k: v[i].tolist() for k, v in out.items()} for i in range(len(instances))]

    def infer(self, tensors):
        names = list(self.input_specs)
        if len(names) == 1:
            arrays = {names[0]: single_input(tensors)}
        else:
            arrays = {t.name: t.array for t in tensors}
        return [Tensor(k, v) for k, v in self._run(arrays).items()]

    def metadata(self):
        def describe(name, spec):
            dtype = datatype_of(np.zeros(0, spec.dtype.as_numpy_dtype))
            shape = [-1 if d is None else d for d in spec.shape.as_list()] if spec.shape.rank is not None else []
            return {"name": name, "datatype": dtype, "shape": shape}

        return {
            "inputs": [describe(k, v) for k, v in self.input_specs.items()],
            "outputs": [describe(k, v) for k, v in self.output_specs.items()],
        }


class TorchModel:
    platform = "pytorch_torchscript"

    def __init__(self, path):
        import torch

        self.torch = torch
        self.module = torch.jit.load(path, map_location="cpu")
        self.module.eval()

    def _call(self, arrays):
        torch = self.torch
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        with torch.no_grad():
            out = self.module(*tensors)
        if isinstance(out, (tuple, list)):
            return [o.numpy() for o in out]
        return [out.numpy()]

    def predict(self, instances):
        # V1 carries no types: numbers go in as float32, what most modules expect.
        return self._call([as_array(instances, np.float32, "instances")])[0].tolist()

    def infer(self, tensors):
        outs = self._call([t.array for t in tensors])
        if len(outs) == 1:
            return [Tensor("predictions", outs[0])]
        return [Tensor(f"predictions_{i}", o) for i, o in enumerate(outs)]

    def metadata(self):
        return {"inputs": [], "outputs": []}


ADAPTERS = {
    "SCIKIT_LEARN": SklearnModel,
    "ONNX": OnnxModel,
    "TENSORFLOW": TensorflowModel,
    "PYTORCH": TorchModel,
}


def load(framework, path):
    return ADAPTERS[framework](path)
