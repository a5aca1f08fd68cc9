"""The runtime's configuration, read once from the environment."""

import os
from dataclasses import dataclass

FRAMEWORKS = ("TENSORFLOW", "PYTORCH", "ONNX", "SCIKIT_LEARN")
DEFAULT_MODEL_DIR = "/mnt/models"
DEFAULT_PORT = 8080
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


class ConfigError(Exception):
    """The environment does not describe a servable model."""


@dataclass(frozen=True)
class Config:
    model_name: str
    framework: str
    model_dir: str
    port: int
    max_request_bytes: int


def _int(env, key, default, low, high):
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, got {value}")
    return value


def from_env(env=None):
    env = os.environ if env is None else env
    name = env.get("GANTRY_MODEL_NAME", "").strip()
    if not name:
        raise ConfigError("GANTRY_MODEL_NAME is required")
    if "/" in name or name in (".", ".."):
        raise ConfigError(f"GANTRY_MODEL_NAME must not contain '/', got {name!r}")
    framework = env.get("GANTRY_MODEL_FRAMEWORK", "").strip().upper()
    if framework not in FRAMEWORKS:
        raise ConfigError(
            f"GANTRY_MODEL_FRAMEWORK must be one of {', '.join(FRAMEWORKS)}, got {framework!r}"
        )
    return Config(
        model_name=name,
        framework=framework,
        model_dir=env.get("GANTRY_MODEL_DIR", "").strip() or DEFAULT_MODEL_DIR,
        port=_int(env, "GANTRY_PORT", DEFAULT_PORT, 1, 65535),
        max_request_bytes=_int(
            env, "GANTRY_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, 1024, 1 << 31
        ),
    )
