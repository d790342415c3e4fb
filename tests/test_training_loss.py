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


def test_referring_loss_is_the_published_weighted_cross_entropy():
    from afb_urr.training.loss import referring_loss
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 5, 6)
    masks = (torch.rand(2, 5, 6) > 0.7).long()
    logp = torch.log_softmax(logits, dim=1)
    picked = logp.gather(1, masks[:, None])[:, 0]
    w = torch.where(masks == 1, 1.1, 0.9)
    assert referring_loss(logits, masks).item() == pytest.approx((-(w * picked).sum() / w.sum()).item(), rel=1e-6)
    with pytest.raises(ValueError, match="B x 2 x H x W"):
        referring_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="do not match"):
        referring_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5))


def test_soft_iou_loss_scores_each_sample_as_a_whole():
    from afb_urr.training.loss import soft_iou_loss
    masks = torch.zeros(1, 4, 4, dtype=torch.long)
    masks[0, :2, :2] = 1
    sure = torch.where(masks.bool(), 1.0, -1.0)[:, None] * torch.tensor([-20.0, 20.0])[None, :, None, None]
    assert soft_iou_loss(sure, masks).item() == pytest.approx(0.0, abs=1e-6)
    # p = 0.5 on the object (4 pixels) and on an equal distractor (4 pixels): IoU = 2 / (4 + 2) = 1/3
    half = torch.full((1, 2, 4, 4), -20.0)
    half[:, 0] *= -1  # background sure everywhere else
    half[0, :, :2, :2] = 0.0
    half[0, :, 2:, 2:] = 0.0
    assert soft_iou_loss(half, masks).item() == pytest.approx(1 - 1 / 3, rel=1e-5)
    # committing to the right object alone costs less than hedging; both empty is a perfect score
    assert soft_iou_loss(sure, masks) < soft_iou_loss(half, masks)
    assert soft_iou_loss(torch.tensor([20.0, -20.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4),
                         torch.zeros(1, 4, 4)).item() == pytest.approx(0.0, abs=1e-6)
