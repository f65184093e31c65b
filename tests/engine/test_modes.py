import pytest
import torch
import torch.nn.functional as F

from geogui.engine import modes
from geogui.engine.model import MoETransformer
from geogui.engine.rotation import DataRotator
from geogui.settings import Mode, ModelSettings

CFG = ModelSettings(d_model=32, n_layers=2, n_heads=2, seq_len=16, expert_hidden=48)
WEIGHTS = modes.LossWeights(penalty=0.001, orthogonality=0.5, specialization=0.3, aux=0.01)


def build(seed: int = 0, ghost_activation=(0.5, 0.25, 0.0, 1.0)):
    torch.manual_seed(seed)
    model = MoETransformer(CFG, 256)
    rotator = DataRotator(CFG.presentations, CFG.rotation_dimensions, CFG.d_model, CFG.max_rotation)
    for layer in model.moe_layers:  # part-awake ghosts, so the ghost gates are exercised
        layer.set_extra_state({"ghost_activation": list(ghost_activation), "saturation_ema": 0.0,
                               "saturated_steps": 0})
    return model, rotator


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, 16), generator=g), torch.randint(0, 256, (3, 16), generator=g)


def gradients(model, rotator, fn):
    model.zero_grad(set_to_none=True)
    rotator.zero_grad(set_to_none=True)
    terms = fn()
    terms.loss.backward()
    params = list(model.named_parameters()) + [("rotator." + n, p) for n, p in rotator.named_parameters()]
    return terms, {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in params}


@pytest.mark.parametrize("chunk", [0, 3])
@pytest.mark.parametrize("ghosts", [(0.5, 0.25, 0.0, 1.0), (1.0, 1.0, 1.0, 1.0)])
def test_batched_geometric_equals_reference_loop(chunk, ghosts):
    model, rotator = build(ghost_activation=ghosts)
    x, y = batch()
    batched, g_batched = gradients(model, rotator, lambda: modes.geometric_terms(model, rotator, x, y, WEIGHTS, chunk))
    loop, g_loop = gradients(model, rotator, lambda: modes.geometric_terms_reference(model, rotator, x, y, WEIGHTS))
    for name in modes.TERM_NAMES:
        assert getattr(batched, name).item() == pytest.approx(getattr(loop, name).item(), abs=1e-6), name
    worst = max((g_batched[n] - g_loop[n]).abs().max().item() for n in g_loop)
    assert worst <= 1e-5
    # The comparison is not vacuous: experts, rotator and every presentation's expert get gradient.
    assert g_loop["rotator.theta"].abs().min() > 0
    assert g_loop["blocks.0.moe.experts.w_in"][0].abs().sum() > 0
    assert g_loop["blocks.0.moe.experts.w_in"][CFG.num_experts + 3].abs().sum() > 0  # awake ghost
    dormant_gradient = g_loop["blocks.0.moe.experts.w_in"][CFG.num_experts + 2].abs().sum()
    assert (dormant_gradient == 0) == (ghosts[2] == 0)


def test_geometric_terms_match_their_definitions():
    model, rotator = build()
    x, y = batch()
    terms = modes.geometric_terms_reference(model, rotator, x, y, WEIGHTS)
    angles = rotator.angles()
    outs = [model.forward_presentation(rotator.rotate(model.embed_tokens(x), angles[p]), p)
            for p in range(CFG.presentations)]
    logits = torch.stack([o.logits for o in outs]).mean(0)
    assert terms.task_loss.item() == pytest.approx(F.cross_entropy(logits.view(-1, 256), y.view(-1)).item(), rel=1e-6)
    hidden = torch.stack([o.hidden for o in outs])  # (P, B, T, D)
    cos = [F.cosine_similarity(hidden[p], hidden[q], dim=-1).abs().mean()
           for p in range(8) for q in range(8) if p != q]
    assert terms.orthogonality.item() == pytest.approx(0.5 * torch.stack(cos).mean().item(), rel=1e-5)
    variance = hidden.norm(dim=-1).var(dim=0, unbiased=False).mean()
    assert terms.specialization.item() == pytest.approx(0.3 * max(0.0, 1 - variance.item()), rel=1e-5, abs=1e-7)
    assert terms.penalty.item() == pytest.approx(0.001 * (angles ** 2).mean().item(), rel=1e-6)
    total = terms.task_loss + terms.penalty + terms.orthogonality + terms.specialization
    assert terms.loss.item() == pytest.approx(total.item(), rel=1e-6)


def test_fast_loss_is_ce_plus_aux_plus_weighted_mean_square_angle():
    model, rotator = build()
    x, y = batch()
    terms = modes.geometric_fast_terms(model, rotator, x, y, modes.LossWeights(0.05, 0.5, 0.3, 0.01))
    out = model(x)
    ce = F.cross_entropy(out.logits.view(-1, 256), y.view(-1))
    expected = ce + 0.01 * out.aux_loss + 0.05 * rotator.angles().pow(2).mean()
    assert terms.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms.penalty.item() == pytest.approx(0.05 * rotator.angles().pow(2).mean().item(), rel=1e-6)
    assert terms.aux_loss.item() > 0


def test_rotations_leave_the_fast_forward_pass_untouched():
    model, rotator = build()
    x, y = batch()
    before, g_before = gradients(model, rotator, lambda: modes.geometric_fast_terms(model, rotator, x, y, WEIGHTS))
    with torch.no_grad():
        rotator.theta.add_(1.0)
    after, g_after = gradients(model, rotator, lambda: modes.geometric_fast_terms(model, rotator, x, y, WEIGHTS))
    assert after.task_loss.item() == before.task_loss.item()
    assert after.penalty.item() != before.penalty.item()
    for name, grad in g_before.items():
        if not name.startswith("rotator."):
            assert torch.equal(grad, g_after[name]), name
    # The rotator's only gradient is the penalty's: d/dtheta of w * mean((2 tanh theta)^2).
    theta = rotator.theta.detach()
    angles = 2.0 * torch.tanh(theta)
    expected = WEIGHTS.penalty * 2 * angles * 2.0 * (1 - torch.tanh(theta) ** 2) / angles.numel()
    assert torch.allclose(g_after["rotator.theta"], expected, atol=1e-9)


def test_standard_mode_has_no_rotation_term_and_no_rotator_gradient():
    model, rotator = build()
    x, y = batch()
    terms, grads = gradients(model, rotator, lambda: modes.compute_terms(Mode.STANDARD, model, rotator, x, y, WEIGHTS))
    assert terms.penalty.item() == 0.0
    assert grads["rotator.theta"].abs().sum() == 0
    assert terms.loss.item() == pytest.approx((terms.task_loss + terms.aux_loss).item(), rel=1e-6)


def test_non_finite_terms_are_not_replaced():
    model, rotator = build()
    x, y = batch()
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    for mode in Mode:
        terms = modes.compute_terms(mode, model, rotator, x, y, WEIGHTS)
        assert torch.isnan(terms.loss), mode
