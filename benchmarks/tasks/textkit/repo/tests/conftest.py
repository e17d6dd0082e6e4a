import pytest


@pytest.fixture
def paragraph() -> str:
    return (
        "The quick brown fox jumps over the lazy dog. It was not amused! "
        "Would the dog ever forgive the fox? Nobody knows."
    )
