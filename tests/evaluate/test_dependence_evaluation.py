"""evaluate/dependence.py: the per-run measurement of the dependence study, on a classifier and maps
whose answers are known (a cue reader; maps that are the cue itself or uniform)."""

from __future__ import annotations

import pytest
import torch

from attrsearch.config import ExperimentConfig
from attrsearch.data.shapes_twins import twin_datasets
from attrsearch.evaluate.dependence import add_dependence, dependence_cases
from attrsearch.metrics.results import EvaluationResult
from tests.metrics.test_intervention import P_HIGH, P_LOW, LookupClassifier, _key


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = ExperimentConfig.model_validate(
        {
            "cache_dir": str(tmp_path_factory.mktemp("dep")),
            "data": {
                "image_size": 32,
                "shapes": {"num_classes": 4, "num_test": 40, "context": {"biased_classes": [0], "p_train": 0.5}},
            },
            "method": {"name": "center"},
            "evaluation": {"dependence": {"enabled": True, "images": 30}},
        }
    )
    data = cfg.data.model_copy(deep=True)
    data.shapes.context.p_test = 1.0
    datasets, _, _ = twin_datasets(data, "test", cfg.cache_dir, 30, ("original", "no_cue"))
    model = LookupClassifier(datasets, lambda s: bool(s["context"].any()))
    context = {_key(ds[i]["image"]): ds[i]["context"] for ds in datasets.values() for i in range(len(ds))}
    return cfg, model, context


def test_a_cue_map_of_a_cue_reader(setup):
    cfg, model, context = setup

    def cue_maps(images: torch.Tensor) -> torch.Tensor:  # every class's map is the image's cue
        return torch.stack([context[_key(x)].float() for x in images])[:, None].expand(-1, 4, -1, -1)

    frame = dependence_cases(cue_maps, model, cfg)
    assert len(frame) > 5 and (frame["class"] == 0).all()
    assert frame["cue_effect"].to_numpy() == pytest.approx(P_HIGH - P_LOW, abs=1e-6)
    assert frame["attributed_share"].to_numpy() == pytest.approx(1.0)
    assert (frame["member"] == "confound p_train=0.5").all() and (frame["source"] == "center").all()
    assert (frame["source_kind"] == "method").all()


def test_a_uniform_map_has_riw_one(setup):
    cfg, model, _ = setup
    result = EvaluationResult({})
    add_dependence(result, lambda x: torch.full((x.shape[0], 4, 32, 32), 0.5), model, cfg)
    frame = result.tables["dependence"]
    assert frame["attributed_riw"].to_numpy() == pytest.approx(1.0, rel=1e-5)
    assert result.metrics["dependence/attributed_riw"] == pytest.approx(1.0, rel=1e-5)
    assert result.metrics["dependence/cue_effect"] == pytest.approx(P_HIGH - P_LOW, abs=1e-6)
    assert result.metrics["dependence/cases"] == len(frame)
    off = cfg.model_copy(deep=True)
    off.evaluation.dependence.enabled = False
    empty = EvaluationResult({})
    add_dependence(empty, None, model, off)
    assert empty.tables == {} and empty.metrics == {}


def test_dependence_needs_the_shapes_data():
    with pytest.raises(ValueError, match="evaluation.dependence: needs the built-in shapes data"):
        ExperimentConfig.model_validate(
            {"data": {"dataset": "folder", "root": "/x"}, "evaluation": {"dependence": {"enabled": True}}}
        )
