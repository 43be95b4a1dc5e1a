"""A module whose import raises SystemExit, as ``unittest.__main__`` does
(tests/test_server_imports.py): resolving it must not end the process that resolves it."""

raise SystemExit(3)
