"""Delivery: one app end to end (source -> render -> validate -> plan -> apply -> health).

Push mode (``tether apply``) and the controller call the same functions: the CLI with a local
directory or Git URL, the controller with a shared mirror cache and its watch cache as the live
reader. Blocking work (git, renderers) runs in worker threads so an event loop serving many
apps stays responsive.
"""
