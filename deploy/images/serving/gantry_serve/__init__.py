"""Gantry's model server: one model, V1 (TF Serving style) and V2 (Open Inference
Protocol) over HTTP, on the standard library's ThreadingHTTPServer.

The contract (environment, paths, status codes, exit codes) is docs/serving.md.
Modules: config (environment), artifacts (where each framework's model file is),
protocol (request/response shapes, no framework), models (one adapter per framework),
server (HTTP and shutdown), __main__ (start-up and exit codes).
"""
