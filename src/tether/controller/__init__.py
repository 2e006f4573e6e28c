"""The pull-mode controller: watches Applications and keeps the cluster tethered to Git."""
