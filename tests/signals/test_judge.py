import numpy as np
import pytest

from gradprobe.signals.judge import Judgement, headline, judge, moment, rms


def test_layers_not_judged_are_skipped_in_either_direction():
    forward = np.array([1.0, np.nan, 1e-3, np.nan])
    judgement = judge(forward, np.full(4, np.nan), (None, "forward"), 100.0)
    assert (judgement.verdict, judgement.layer) == ("vanishing", 3)
    healthy = judge(np.array([np.nan, 2.0]), np.array([np.nan, 1.0]), (None, "forward"), 100.0)
    assert healthy.verdict == "healthy" and healthy.factor == 2.0
    nothing = judge(np.full(2, np.nan), np.full(2, np.nan), (None, "forward"), 100.0)
    assert nothing.verdict == "healthy" and nothing.factor == 1.0


def test_headline_names_layers_and_references():
    judgement = Judgement("vanishing", 2, "backward", 1e-4, False)
    text = headline(judgement, 100.0, "signals", ["a", "b.c"], ("input", "last hidden layer"))
    assert text == (
        "vanishing: gradients leave the ×100 band at layer b.c (weight layer 2); their second "
        "moment reaches ×0.0001 of the last hidden layer's"
    )
    overflow = Judgement("exploding", 1, "forward", np.inf, True)
    assert (
        headline(overflow, 100.0, names=["x"]) == "exploding: overflow at layer x (weight layer 1)"
    )
    assert headline(overflow, 100.0) == "exploding: overflow at layer 1"


def test_moments_do_not_overflow_early():
    values = np.array([3e200, -4e200])
    assert rms(values) == pytest.approx(np.sqrt(12.5) * 1e200)
    assert moment(np.array([1.0, 3.0])) == pytest.approx(5.0, rel=1e-15)
