"""The scheduler: picks a compute host for each new server and hands it the build.

``build.py`` handles ``ScheduleBuild``: ``host_state.py`` reads the hosts,
``filters/`` keeps those that fit, ``weighers/`` orders them, and the claim in
``shared.db.hosts`` takes the resources atomically. ``no_valid_host.py`` words
the fault when no host fits. Run it with ``python -m services.scheduler``.
"""
