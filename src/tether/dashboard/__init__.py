"""The web dashboard: Applications, their resource trees, diffs, history and actions, as the signed-in user.

::

    dashboard = Dashboard(kube, DashboardOptions(local_sign_in=True))
    await serve(kube, "127.0.0.1", 8081)      # or mount dashboard.app in an aiohttp runner

``tether dashboard`` and ``tether controller --dashboard HOST:PORT`` serve it. See docs/dashboard.md.
"""

from tether.dashboard.server import Dashboard, DashboardOptions, serve

__all__ = ["Dashboard", "DashboardOptions", "serve"]
