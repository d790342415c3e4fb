import pytest
import torch

from afb_urr.training.loss import uncertainty_loss, vos_loss


def test_uncertainty_loss_matches_definition():
    torch.manual_seed(0)
    s = torch.rand(2, 3, 5, 7)
    p = torch.softmax(s, dim=1)
    top = p.sort(dim=1, descending=True).values
    u = torch.exp(1 - top[:, 0] / (top[:, 1] + 1e-8))
    want = torch.stack([u[i].norm() / (5 * 7) ** 0.5 for i in range(2)]).mean()
    assert torch.allclose(uncertainty_loss(s), want, atol=1e-6)
    # Equal probabilities: U = 1 everywhere, loss 1.
    assert uncertainty_loss(torch.full((1, 2, 4, 4), 0.5)).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="K >= 2"):
        uncertainty_loss(torch.rand(1, 1, 4, 4))


def test_vos_loss_combines_ce_and_uncertainty():
    torch.manual_seed(0)
    logits, s = torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 4, 4))
    onehot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    loss, ce, unc = vos_loss(logits, s, onehot)
    assert ce.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())
    assert loss.item() == pytest.approx(ce.item() + 0.5 * unc.item())
    assert vos_loss(logits, s, labels)[0].item() == pytest.approx(loss.item())
    with pytest.raises(ValueError, match="do not match"):
        vos_loss(logits, s, onehot[:, :2])
