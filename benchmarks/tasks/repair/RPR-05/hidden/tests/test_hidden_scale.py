from rangekit.scale import normalize, rescale


def test_normalize_ends_and_outside():
    assert normalize(0, 0, 10) == 0.0
    assert normalize(10, 0, 10) == 1.0
    assert normalize(-5, 0, 10) == 0.0
    assert normalize(25, 0, 10) == 1.0
    assert normalize(3, 2, 6) == 0.25


def test_rescale_clamps():
    assert rescale(150, (0, 100), (0, 1)) == 1.0
