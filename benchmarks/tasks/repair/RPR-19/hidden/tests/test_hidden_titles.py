from titles.case import title_case


def test_mixed_case_input():
    assert title_case("A tALE OF TWO cities") == "A Tale of Two Cities"
    assert title_case("OF MICE AND MEN") == "Of Mice and Men"
    assert title_case("gone With The wind") == "Gone With the Wind"
