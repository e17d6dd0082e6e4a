from throttle.window import RateLimiter


def test_window_boundaries():
    rl = RateLimiter(2, 10)
    assert rl.allow(0) and rl.allow(5)
    assert not rl.allow(9)
    assert rl.remaining(9.5) == 0
    assert rl.remaining(10) == 1
    assert rl.allow(10)
    assert not rl.allow(14)
    assert rl.allow(15)


def test_retry_after_always_allows():
    rl = RateLimiter(3, 7)
    for t in (0, 2, 3):
        assert rl.allow(t)
    for now in (3, 4, 6):
        assert rl.allow(now + rl.retry_after(now))
