import pytest

from throttle.window import RateLimiter


def test_limit_blocks():
    rl = RateLimiter(2, 10)
    assert rl.allow(0) and rl.allow(1)
    assert not rl.allow(2)


def test_remaining():
    rl = RateLimiter(3, 10)
    rl.allow(0)
    assert rl.remaining(5) == 2


def test_old_events_are_forgotten():
    rl = RateLimiter(1, 10)
    assert rl.allow(50)
    assert rl.allow(100)


def test_bad_arguments():
    with pytest.raises(ValueError):
        RateLimiter(0, 10)


def test_event_expires_exactly_one_window_later():
    rl = RateLimiter(1, 10)
    assert rl.allow(0)
    assert rl.allow(10)


def test_retry_after_is_honoured():
    rl = RateLimiter(2, 5)
    rl.allow(0)
    rl.allow(1)
    wait = rl.retry_after(2)
    assert wait == 3
    assert rl.allow(2 + wait)
