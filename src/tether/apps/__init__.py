"""Operations on Applications for people and tools: `tether app`, the dashboard and previews.

``ops``: get, list, request a sync or refresh, pin and unpin, wait for a sync, pick a rollback
revision. ``revisions``: render an app at any revision from Git (Git is the record), diff two
renders, revert a branch. Both act through the Kubernetes API as their caller.
"""
