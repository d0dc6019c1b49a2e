"""The service around each pure core: one package per loop, named exactly like its core in
``adflywheel.loops``. Each package reads and writes the store, talks to the ad platform, and
declares its cycle step (``step.py``). Its ``__all__`` names the modules the API, the CLI, the
cycle and other services may use; the rest are its private helpers.

``alerts`` is shared by every loop: what reaches a human when something needs one.
"""
