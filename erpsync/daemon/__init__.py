"""The long-running service: scheduler, signals, systemd notify, leader election, health and metrics.

``erpsync.app.build_app`` assembles a ``Daemon`` from settings; ``Daemon.serve()`` runs it.
"""
