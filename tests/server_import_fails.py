"""A module whose import fails (tests/test_server_imports.py): a manifest naming it must get
a located 422, never a 500."""

raise ValueError("this module fails on import on purpose")
