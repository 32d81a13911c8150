"""The three readings of the paper's weight decay, and the learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch

from discnet.models.optimizer import build_optimizer, lr_factor


def _params():
    return [torch.nn.Parameter(torch.ones(3))]


@pytest.mark.parametrize(
    ("algorithm", "cls", "decay"),
    [("adamw", torch.optim.AdamW, 0.05), ("adam_l2", torch.optim.Adam, 0.05), ("keras_decay", torch.optim.Adam, 0.0)],
)
def test_algorithms(algorithm, cls, decay):
    built = build_optimizer(_params(), {"algorithm": algorithm, "weight_decay": 0.05}, total_steps=10, max_epochs=2)
    optimizer = built["optimizer"] if isinstance(built, dict) else built
    assert type(optimizer) is cls and optimizer.param_groups[0]["weight_decay"] == decay


def test_the_papers_constant_rate_has_no_scheduler():
    assert isinstance(build_optimizer(_params(), {}, total_steps=10), torch.optim.AdamW)


def test_keras_decay_is_lr_over_one_plus_decay_times_iterations():
    assert [lr_factor(s, {"algorithm": "keras_decay", "weight_decay": 0.05}, 100) for s in (0, 20)] == [1.0, 0.5]


def test_warmup_then_cosine_to_the_floor():
    optim = {"schedule": "cosine", "warmup_epochs": 1, "min_lr_ratio": 0.01}
    factors = [lr_factor(s, optim, total_steps=100, steps_per_epoch=10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.01, abs=1e-3)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_poly_schedule_and_a_scheduler_that_steps():
    params = _params()
    built = build_optimizer(params, {"schedule": "poly", "lr": 0.1}, total_steps=10, max_epochs=1)
    optimizer, scheduler = built["optimizer"], built["lr_scheduler"]["scheduler"]
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**0.9)


def test_unknown_algorithm_and_unbounded_run_are_refused():
    with pytest.raises(ValueError, match="algorithm"):
        build_optimizer(_params(), {"algorithm": "sgd"}, total_steps=10)
    with pytest.raises(ValueError, match="known length"):
        build_optimizer(_params(), {"schedule": "cosine"}, total_steps=math.inf)
