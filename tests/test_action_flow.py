"""ActionFlow: a per-token input linear in the action and local in the previous frame."""

import pytest
import torch

from worldenv.nn.action_flow import ActionFlow

B, T, GRID, C, A, WIDTH = 2, 3, 4, 3, 2, 8


def perturbed_flow(seed: int = 0) -> ActionFlow:
    torch.manual_seed(seed)
    flow = ActionFlow(C, GRID, A, WIDTH)
    with torch.no_grad():
        flow.embed.weight.normal_()
        flow.embed.bias.normal_()
    return flow


def test_starts_as_no_input_at_all():
    flow = ActionFlow(C, GRID, A, WIDTH)
    out = flow(torch.randn(B, T, GRID * GRID, C), torch.randn(B, T, A))
    assert out.shape == (B, T, GRID * GRID, WIDTH) and torch.equal(out, torch.zeros_like(out))


@torch.no_grad()
def test_is_linear_in_the_action():
    flow, previous = perturbed_flow(), torch.randn(B, T, GRID * GRID, C)
    a1, a2 = torch.randn(B, T, A), torch.randn(B, T, A)
    zero = flow(previous, torch.zeros(B, T, A))
    # No action, no displacement: every token gets the same (bias) input.
    torch.testing.assert_close(zero, flow.embed.bias.expand_as(zero))
    torch.testing.assert_close(
        flow(previous, a1 + a2) - zero, (flow(previous, a1) - zero) + (flow(previous, a2) - zero), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(flow(previous, 3 * a1) - zero, 3 * (flow(previous, a1) - zero), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_each_token_reads_its_three_by_three_neighbourhood_of_the_previous_frame():
    flow, previous, actions = perturbed_flow(), torch.randn(1, 1, GRID * GRID, C), torch.ones(1, 1, A)
    changed = previous.clone()
    row, col = 1, 2
    changed[0, 0, row * GRID + col] += 1.0
    moved = (flow(changed, actions) - flow(previous, actions)).abs().amax(dim=-1).reshape(GRID, GRID)
    near = torch.zeros(GRID, GRID, dtype=torch.bool)
    near[row - 1 : row + 2, col - 1 : col + 2] = True
    assert (moved[near] > 1e-4).all() and (moved[~near] == 0).all()


@torch.no_grad()
def test_a_wider_reach_reads_a_wider_neighbourhood():
    torch.manual_seed(0)
    flow = ActionFlow(C, 6, A, WIDTH, reach=2)
    flow.embed.weight.normal_()
    previous, actions = torch.randn(1, 1, 36, C), torch.ones(1, 1, A)
    changed = previous.clone()
    changed[0, 0, 2 * 6 + 3] += 1.0
    moved = (flow(changed, actions) - flow(previous, actions)).abs().amax(dim=-1).reshape(6, 6)
    near = torch.zeros(6, 6, dtype=torch.bool)
    near[0:5, 1:6] = True
    assert (moved[near] > 1e-4).all() and (moved[~near] == 0).all()


@torch.no_grad()
def test_widening_a_trained_flow_leaves_what_it_computes_unchanged():
    from worldenv.nn.action_flow import widen

    narrow = perturbed_flow()
    narrow.displacement.weight.normal_()
    wide = ActionFlow(C, GRID, A, WIDTH, reach=2)
    wide.load_state_dict({**narrow.state_dict(), "displacement.weight": widen(narrow.displacement.weight, C, 1, 2)})
    previous, actions = torch.randn(B, T, GRID * GRID, C), torch.randn(B, T, A)
    torch.testing.assert_close(wide(previous, actions), narrow(previous, actions), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="expected new_reach >= reach"):
        widen(narrow.displacement.weight, C, 2, 1)
