from bitops.bits import is_power_of_two, next_power_of_two


def test_exactly_the_powers():
    powers = {1 << k for k in range(20)}
    for n in range(1 << 12):
        assert is_power_of_two(n) == (n in powers), n


def test_next_power_is_a_power():
    for n in range(1, 300):
        assert is_power_of_two(next_power_of_two(n))
