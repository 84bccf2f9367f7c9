"""Built-in variants, installed as ``bench_plugins``.

Each module is a plugin registered exactly like a third-party one: it implements
``bench_register_models`` with ``@bench.hookimpl``.
"""
