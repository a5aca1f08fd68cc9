"""`python3 -m gantry_serve`: load the model the environment names and serve it until
SIGTERM. Start-up failures print one line on stderr and exit with a code of their own
(docs/serving.md), so the agent can report why a pod failed."""

import signal
import sys
import threading

from . import artifacts, config

EXIT_CONFIG = 2  # the environment is wrong (name, framework, port, limit)
EXIT_ARTIFACT_MISSING = 3  # the model directory lacks the framework's artifact
EXIT_LOAD_FAILED = 4  # the artifact is there but the framework cannot load it
EXIT_LISTEN_FAILED = 5  # the port cannot be bound


def fail(code, message):
    print("gantry-serve: " + " ".join(str(message).split()), file=sys.stderr, flush=True)
    sys.exit(code)


def main():
    try:
        cfg = config.from_env()
    except config.ConfigError as e:
        fail(EXIT_CONFIG, f"bad configuration: {e}")
    try:
        path = artifacts.locate(cfg.framework, cfg.model_dir, cfg.model_name)
    except artifacts.ArtifactMissing as e:
        fail(EXIT_ARTIFACT_MISSING, f"model artifact missing: {e}")
    except OSError as e:
        fail(EXIT_ARTIFACT_MISSING, f"model artifact missing: cannot read {cfg.model_dir}: {e}")

    # Imported here: numpy is not needed to report a bad environment.
    from . import models
    from .server import ServingServer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server = ServingServer(("0.0.0.0", cfg.port), cfg)
    except OSError as e:
        fail(EXIT_LISTEN_FAILED, f"cannot listen on port {cfg.port}: {e}")
    # Serve liveness while the model loads; readiness turns 200 once it has.
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    serving.start()
    try:
        model = models.load(cfg.framework, path)
    except Exception as e:
        server.drain()
        server.server_close()
        fail(EXIT_LOAD_FAILED, f"model failed to load from {path}: {type(e).__name__}: {e}")
    server.model = model
    print(
        f"gantry-serve: serving {cfg.framework} model '{cfg.model_name}' from {path} on port {cfg.port}",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(1.0):
        pass
    server.drain()
    server.server_close()  # joins the handler threads: requests in flight finish
    serving.join()
    print("gantry-serve: stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
