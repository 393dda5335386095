import torch

from attrsearch.metrics.context import attribution_shares, case_reliance, relative_importance


def test_shares_hand_values():
    maps = torch.tensor([[[1.0, 1.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    region = torch.tensor([[[True, False], [True, False]], [[True, True], [True, True]]])
    assert torch.allclose(attribution_shares(maps, region), torch.tensor([0.75, 0.0]))


def test_relative_importance_is_mass_share_over_area_share():
    maps = torch.tensor([[[1.0, 1.0], [2.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    region = torch.tensor(
        [[[True, False], [False, False]], [[True, True], [False, False]], [[True, False], [False, False]]]
    )
    riw = relative_importance(maps, region)
    # 0.25 of the mass on 0.25 of the area; a uniform map scores 1; a map without mass 0.
    assert torch.allclose(riw, torch.tensor([1.0, 1.0, 0.0]))
    assert torch.allclose(
        relative_importance(maps[:1], region[:1] | torch.tensor([[False, False], [True, False]])), torch.tensor([1.5])
    )
    assert torch.isnan(relative_importance(maps[:1], torch.zeros_like(region[:1])))[0]


def test_case_reliance_reads_the_case_class_map():
    maps = torch.zeros(2, 3, 2, 2)
    maps[0, 1] = torch.tensor([[3.0, 1.0], [0.0, 0.0]])
    maps[1, 2] = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    maps[0, 0] = 5.0  # another class's map: ignored
    context = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [0, 0]]], dtype=torch.uint8)
    r = case_reliance(maps, torch.tensor([1, 2]), context)
    assert torch.allclose(r["reliance"], torch.tensor([0.75, 0.5]))
    assert torch.allclose(r["riw"], torch.tensor([3.0, 1.0]))
