"""Request and response shapes of the V1 (TF Serving) and V2 (Open Inference Protocol)
calls, independent of any framework: parsing, validation and tensor conversion."""

import numpy as np


class BadInput(Exception):
    """The request is malformed or does not fit the model: HTTP 400."""


# V2 datatypes and the numpy types they travel as.
DATATYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


def datatype_of(array):
    """The V2 datatype naming a numpy array's element type."""
    for name, dtype in DATATYPES.items():
        if name != "BYTES" and array.dtype == np.dtype(dtype):
            return name
    return "BYTES"


def as_array(data, dtype=None, what="input"):
    """Nested JSON lists as one rectangular numpy array, or BadInput."""
    try:
        array = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as e:
        raise BadInput(f"{what} is not a rectangular array of the right type: {e}") from None
    if array.dtype == np.object_ and dtype is None:
        raise BadInput(f"{what} is not a rectangular array of numbers")
    return array


def v1_instances(body):
    """The `instances` of a V1 predict body: a non-empty list."""
    if not isinstance(body, dict):
        raise BadInput('the body must be a JSON object like {"instances": [...]}')
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise BadInput('"instances" must be a non-empty list')
    return instances


def v1_columns(instances, names):
    """Row-format instances for a model with several named inputs: each instance is an
    object keyed by input name; returns one list per input."""
    columns = {name: [] for name in names}
    for i, row in enumerate(instances):
        if not isinstance(row, dict) or set(row) != set(names):
            raise BadInput(
                f"instance {i} must be an object with exactly the inputs {sorted(names)}"
            )
        for name in names:
            columns[name].append(row[name])
    return columns


class Tensor:
    """A named V2 input or output."""

    def __init__(self, name, array):
        self.name = name
        self.array = array

    def to_json(self):
        array = self.array
        data = array.reshape(-1).tolist()
        if array.dtype.kind in "OSU":
            data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in data]
        return {
            "name": self.name,
            "shape": list(array.shape),
            "datatype": datatype_of(array),
            "data": data,
        }


def v2_inputs(body):
    """The `inputs` of a V2 infer body as Tensors, each reshaped to its declared shape;
    also the names of the requested outputs (None: all)."""
    if not isinstance(body, dict):
        raise BadInput('the body must be a JSON object like {"inputs": [...]}')
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadInput('"inputs" must be a non-empty list')
    tensors, seen = [], set()
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise BadInput(f"inputs[{i}] must be an object with name, shape, datatype and data")
        name, shape = item.get("name"), item.get("shape")
        datatype, data = item.get("datatype"), item.get("data")
        if not isinstance(name, str) or not name:
            raise BadInput(f"inputs[{i}].name must be a non-empty string")
        if name in seen:
            raise BadInput(f"inputs[{i}].name '{name}' is given twice")
        seen.add(name)
        if (
            not isinstance(shape, list)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise BadInput(f"inputs[{i}].shape must be a list of non-negative integers")
        if datatype not in DATATYPES:
            raise BadInput(f"inputs[{i}].datatype must be one of {', '.join(DATATYPES)}")
        if not isinstance(data, list):
            raise BadInput(f"inputs[{i}].data must be a list")
        array = as_array(data, DATATYPES[datatype], f"inputs[{i}].data")
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise BadInput(
                f"inputs[{i}] has {array.size} values but shape {shape} needs "
                f"{int(np.prod(shape, dtype=np.int64))}"
            )
        tensors.append(Tensor(name, array.reshape(shape)))
    wanted = body.get("outputs")
    if wanted is None:
        return tensors, None
    if not isinstance(wanted, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in wanted
    ):
        raise BadInput('"outputs" must be a list of objects with a "name"')
    return tensors, [o["name"] for o in wanted]


def select_outputs(outputs, wanted):
    """The outputs a V2 request asked for, in its order (all when it named none)."""
    if wanted is None:
        return outputs
    by_name = {t.name: t for t in outputs}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise BadInput(f"unknown outputs {missing}; the model has {sorted(by_name)}")
    return [by_name[n] for n in wanted]


def single_input(tensors):
    """The one input of a model that takes one (any name is accepted)."""
    if len(tensors) != 1:
        raise BadInput(f"this model takes one input, got {len(tensors)}")
    return tensors[0].array


def check_shape(name, array, dims):
    """`dims` is the model's declared shape (None or a string for a free dimension)."""
    if dims is None:
        return
    if array.ndim != len(dims):
        raise BadInput(
            f"input '{name}' must have {len(dims)} dimensions {list(dims)}, got shape {list(array.shape)}"
        )
    for got, want in zip(array.shape, dims):
        if isinstance(want, int) and want >= 0 and got != want:
            raise BadInput(f"input '{name}' must have shape {list(dims)}, got {list(array.shape)}")
