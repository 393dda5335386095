"""Helpers shared by the tests (writers of tiny files, tiny models, sweep files, cluster and S3 harnesses).

Imported as ``from tests.support.<module> import ...``; fixtures themselves live in ``conftest.py`` files.
"""
