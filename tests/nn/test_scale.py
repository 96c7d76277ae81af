import math
import warnings

import numpy as np
import pytest
from scipy import integrate, special

from gradprobe import recommend_scale
from gradprobe.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    NonFiniteError,
    ShapeMismatchError,
)
from gradprobe.nn.mlp import MLP
from gradprobe.nn.scale import gaussian_expectation


def _quad_expectation(function):
    """E[f(z)], z ~ N(0, 1), by adaptive quadrature on each half-line: an independent route."""
    density = lambda z: function(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    total = 0.0
    for low, high in ((-np.inf, 0.0), (0.0, np.inf)):
        value, _ = integrate.quad(density, low, high, epsabs=1e-14, epsrel=1e-13, limit=200)
        total += value
    return total


def gelu(z):
    return 0.5 * z * (1 + special.erf(z / np.sqrt(2)))


def silu(z):
    return z * special.expit(z)


def elu(z):
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))


def test_relu_is_he_in_both_senses():
    scale = recommend_scale("relu")
    assert scale.forward == pytest.approx(2.0, rel=1e-10)
    assert scale.backward == pytest.approx(2.0, rel=1e-10)
    assert scale.agree
    assert scale.mean == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-12)


def test_linear_is_one():
    scale = recommend_scale("linear")
    assert abs(scale.forward - 1.0) < 1e-9
    assert abs(scale.backward - 1.0) < 1e-9


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.5])
def test_user_leaky_relu_matches_closed_form(slope):
    def leaky(z):
        return np.where(z > 0, z, slope * z)

    scale = recommend_scale(leaky)
    expected = 2 / (1 + slope**2)
    assert scale.forward == pytest.approx(expected, rel=1e-9)
    assert scale.backward == pytest.approx(expected, rel=1e-9)
    assert scale.activation == "leaky"


def test_tanh_forward_near_two_and_a_half_and_matches_adaptive_quadrature():
    scale = recommend_scale("tanh")
    assert 2.4 < scale.forward < (5 / 3) ** 2
    assert scale.forward == pytest.approx(
        1 / _quad_expectation(lambda z: math.tanh(z) ** 2), rel=1e-10
    )
    backward = 1 / _quad_expectation(lambda z: (1 - math.tanh(z) ** 2) ** 2)
    assert scale.backward == pytest.approx(backward, rel=1e-10)
    assert not scale.agree
    assert "No single scale" in scale.advice


@pytest.mark.parametrize(
    ("function", "derivative"),
    [
        (
            gelu,
            lambda z: (
                0.5 * (1 + math.erf(z / math.sqrt(2)))
                + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
            ),
        ),
        (silu, lambda z: special.expit(z) * (1 + z * (1 - special.expit(z)))),
        (elu, lambda z: 1.0 if z > 0 else math.exp(z)),
    ],
)
def test_user_callables_match_adaptive_quadrature_with_exact_derivatives(function, derivative):
    scale = recommend_scale(function)
    scalar = lambda z: float(function(np.array([z]))[0])  # noqa: E731
    assert scale.forward == pytest.approx(
        1 / _quad_expectation(lambda z: scalar(z) ** 2), rel=1e-10
    )
    # The numerical derivative is central differences: about 1e-10 relative.
    expected = 1 / _quad_expectation(lambda z: derivative(z) ** 2)
    assert scale.backward == pytest.approx(expected, rel=1e-8)


def test_numerical_derivative_agrees_with_the_tabulated_one():
    tabulated = recommend_scale("tanh")
    numerical = recommend_scale(np.tanh)
    assert numerical.forward == pytest.approx(tabulated.forward, rel=1e-14)
    assert numerical.backward == pytest.approx(tabulated.backward, rel=1e-8)


def test_scalar_only_callable_is_evaluated_elementwise():
    vectorized = recommend_scale(np.tanh)
    scalar = recommend_scale(math.tanh)
    assert scalar.forward == pytest.approx(vectorized.forward, rel=1e-14)
    assert scalar.backward == pytest.approx(vectorized.backward, rel=1e-9)


def test_quadrature_is_exact_for_polynomials_and_kinks():
    assert gaussian_expectation(lambda z: z**4) == pytest.approx(3.0, rel=1e-13)
    assert gaussian_expectation(lambda z: z**6) == pytest.approx(15.0, rel=1e-13)
    # |z| has a kink at 0; the split rule integrates it exactly.
    assert gaussian_expectation(np.abs) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-13)


def test_mlp_auto_init_uses_the_recommended_scale():
    fan_in = 400
    for activation in ("relu", "tanh"):
        weight = MLP([fan_in, 300, 1], activation=activation, init="auto", seed=3).params["W1"]
        expected = recommend_scale(activation).forward
        assert weight.var() * fan_in == pytest.approx(expected, rel=0.03)


def test_callable_with_wrong_shape_is_rejected():
    with pytest.raises(ShapeMismatchError, match="activation: .* returned shape"):
        recommend_scale(lambda z: z[:3])
    with pytest.raises(ShapeMismatchError, match="same shape"):
        recommend_scale(lambda z: float(np.sum(z)))


def test_callable_returning_nan_is_rejected():
    with pytest.raises(NonFiniteError, match="returned nan at z ="):
        recommend_scale(lambda z: np.where(z > 3, np.nan, z))


def test_bad_activations_are_rejected():
    with pytest.raises(InvalidArgumentError, match="activation: got 'swish', expected one of"):
        recommend_scale("swish")
    with pytest.raises(InvalidTypeError, match="activation: got int"):
        recommend_scale(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="E\\[φ\\(z\\)²\\] = 0"):
        recommend_scale(np.zeros_like)
    with pytest.raises(InvalidTypeError, match="expected real numbers"):
        recommend_scale(lambda z: z.astype(complex))


def test_activation_whose_second_moment_overflows_is_rejected_by_name():
    def steep(z):
        return np.exp(30 * z)

    # E[exp(60 z)] = exp(1800) is beyond float64: the scale must not come out as 0.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(
            NonFiniteError, match="activation: got steep with E\\[φ\\(z\\)²\\] = inf"
        ):
            recommend_scale(steep)
    with pytest.raises(NonFiniteError, match="so small that 1/E\\[φ\\(z\\)²\\]"):
        recommend_scale(lambda z: 1e-160 * z)
    # exp itself is fine: E[exp(2z)] = e², so σ_w² = e⁻².
    assert recommend_scale(np.exp).forward == pytest.approx(math.exp(-2), rel=1e-10)


# -- PyTorch activations ----------------------------------------------------------------


def test_torch_relu_identity_and_selu_modules():
    import torch
    from torch import nn

    assert recommend_scale(nn.ReLU()).forward == pytest.approx(2.0, rel=1e-10)
    assert recommend_scale(nn.ReLU()).backward == pytest.approx(2.0, rel=1e-10)
    assert recommend_scale(nn.Identity()).forward == pytest.approx(1.0, rel=1e-10)
    # SELU's constants are chosen so that E[selu(z)²] = 1 for z ~ N(0, 1) (Klambauer et al.).
    selu = recommend_scale(nn.SELU())
    assert selu.forward == pytest.approx(1.0, abs=1e-3)
    assert selu.activation == "selu"
    # The same numbers by adaptive quadrature of PyTorch's own values at floats.
    with warnings.catch_warnings():  # float32 values: quad cannot reach its 1e-13 target
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        expected = 1 / _quad_expectation(lambda z: float(torch.selu(torch.tensor(z))) ** 2)
    assert selu.forward == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("module", "name", "rel"),
    [
        ("SiLU", "silu", 1e-9),
        ("ELU", "elu", 1e-9),
        ("Softplus", "softplus", 1e-9),
        ("Tanh", "tanh", 1e-9),
        ("GELU-tanh", "gelu", 1e-9),
        # PyTorch's default GELU is the erf form; the NumPy table has the tanh form.
        ("GELU", "gelu", 1e-3),
    ],
)
def test_torch_modules_agree_with_the_named_numpy_versions(module, name, rel):
    from torch import nn

    instance = nn.GELU(approximate="tanh") if module == "GELU-tanh" else getattr(nn, module)()
    torch_scale, named = recommend_scale(instance), recommend_scale(name)
    assert torch_scale.forward == pytest.approx(named.forward, rel=rel)
    assert torch_scale.backward == pytest.approx(named.backward, rel=rel)


def test_torch_gelu_erf_matches_adaptive_quadrature_of_scipy_erf():
    from torch import nn

    scale = recommend_scale(nn.GELU())
    assert scale.forward == pytest.approx(1 / _quad_expectation(lambda z: gelu(z) ** 2), rel=1e-9)
    assert scale.activation == "gelu (erf)"


def test_torch_functions_and_a_users_module_and_a_tensor_only_lambda():
    import torch
    import torch.nn.functional as F
    from torch import nn

    def mish(z):
        return z * math.tanh(np.logaddexp(0.0, z))

    scale = recommend_scale(F.mish)
    assert scale.forward == pytest.approx(1 / _quad_expectation(lambda z: mish(z) ** 2), rel=1e-9)
    assert scale.activation == "mish"
    assert recommend_scale(nn.Mish()).forward == pytest.approx(scale.forward, rel=1e-12)

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(1.702 * x)

    swish = recommend_scale(Swish())
    numpy_swish = recommend_scale(lambda z: z * special.expit(1.702 * z))
    assert swish.forward == pytest.approx(numpy_swish.forward, rel=1e-9)
    assert swish.backward == pytest.approx(numpy_swish.backward, rel=1e-6)
    assert swish.activation == "Swish"
    assert recommend_scale(lambda z: torch.relu(z) * 2).forward == pytest.approx(0.5, rel=1e-10)


def test_torch_activations_leave_grad_mode_and_modules_unchanged():
    import torch
    from torch import nn

    prelu = nn.PReLU(init=0.25)
    with torch.no_grad():
        scale = recommend_scale(prelu)
    assert torch.is_grad_enabled()  # the no_grad block ended; inside it autograd still ran
    assert prelu.weight.grad is None and float(prelu.weight.detach()) == 0.25
    assert scale.forward == pytest.approx(2 / (1 + 0.25**2), rel=1e-6)


def test_torch_activations_that_misbehave_are_rejected():
    import torch
    from torch import nn

    class Pool(nn.Module):
        def forward(self, x):
            return x.mean(dim=0, keepdim=True)

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("no")

    with pytest.raises(ShapeMismatchError, match="activation: Pool returned"):
        recommend_scale(Pool())
    with pytest.raises(LossEvaluationError, match="activation: Broken raised RuntimeError"):
        recommend_scale(Broken())
    with pytest.raises(NonFiniteError):
        recommend_scale(lambda z: torch.exp(z) * torch.inf)


def test_importing_the_numpy_kit_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, gradprobe.nn.scale, gradprobe.nn.initializers\nprint('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
