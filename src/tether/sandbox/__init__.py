"""The local Kubernetes-compatible API server."""
