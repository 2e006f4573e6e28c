"""The pull-mode controller: the Application API, informers, work queue, leader election,
reconciler, status and events, webhooks and metrics."""
