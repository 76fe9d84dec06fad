"""normlab_book.folding_speed: folded networks compute the same function."""

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from normlab_book.folding_speed import digits_cnn, fold_sequential, inference_times
from normlab.training import mlp


def _randomize_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g))
                m.running_mean.copy_(torch.randn(c, generator=g))
                m.running_var.copy_(torch.rand(c, generator=g) + 0.1)


@pytest.mark.parametrize("make, shape", [
    (lambda: digits_cnn(bn=True), (5, 1, 8, 8)),
    (lambda: mlp(20, (16, 8), 3, norm="bn", bias_before_norm=True), (5, 20)),
])
def test_folded_network_matches_in_float64(make, shape):
    torch.manual_seed(0)
    model = make().double()
    _randomize_bn(model)
    model.eval()
    folded = fold_sequential(model)
    assert not any(isinstance(m, _BatchNorm) for m in folded.modules())
    x = torch.randn(*shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=0, atol=1e-12)
    # The folded CNN has the same layers as the CNN built without BN.
    if shape[1] == 1:
        plain = digits_cnn(bn=False)
        assert [type(m) for m in folded] == [type(m) for m in plain]


def test_folding_needs_eval_mode_and_a_sequential():
    with pytest.raises(ValueError):
        fold_sequential(digits_cnn(bn=True).train())
    with pytest.raises(TypeError):
        fold_sequential(nn.ModuleList([nn.Linear(2, 2)]))


def test_inference_times_shape():
    x = torch.randn(4, 1, 8, 8)
    t = inference_times({"bn": digits_cnn(True), "plain": digits_cnn(False)}, x, repeats=3,
                        number=1)
    assert set(t) == {"bn", "plain"} and t["bn"].shape == (3,)
