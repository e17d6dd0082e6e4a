import pytest

from rangekit.scale import clamp, lerp, normalize, rescale


def test_clamp():
    assert clamp(5, 0, 10) == 5
    assert clamp(-3, 0, 10) == 0
    assert clamp(12, 0, 10) == 10


def test_clamp_rejects_reversed_bounds():
    with pytest.raises(ValueError):
        clamp(1, 10, 0)


def test_lerp():
    assert lerp(10, 20, 0.25) == 12.5


def test_normalize_midpoint():
    assert normalize(5, 0, 10) == 0.5


def test_rescale_celsius_to_fahrenheit():
    assert rescale(50, (0, 100), (32, 212)) == 122.0
