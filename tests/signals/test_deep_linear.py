import numpy as np
import pytest

from gradprobe.signals.deep_linear import deep_linear


@pytest.mark.parametrize(
    ("w", "verdict"), [(1.5, "exploding"), (0.5, "vanishing"), (1.0, "healthy")]
)
def test_powers_of_w(w, verdict):
    result = deep_linear(w, 30)
    assert result.verdict == verdict
    assert result.activation[-1] == pytest.approx(abs(w) ** 30)
    assert np.allclose(result.weight_gradient, abs(w) ** 29)
