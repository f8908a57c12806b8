"""Typed messages between the services, one module per receiving service.

Each module holds one msgspec Struct per method, the union its server decodes,
and the client class the senders use. Changes are additive only: new fields get
defaults, and the module docstring logs each version.
"""
