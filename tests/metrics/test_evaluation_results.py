import pandas as pd
import pytest

from attrsearch.metrics.results import EvaluationResult, aggregate, average_results
from attrsearch.metrics.suites import SUITES


def test_aggregate_is_mean_and_population_std():
    out = aggregate([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 2.0}])
    assert out == {"a": 2.0, "a_std": 1.0, "b": 2.0, "b_std": 0.0}
    assert aggregate([{"a": 1.0}]) == {"a": 1.0}


def test_average_results_averages_scalars_and_table_cells():
    def result(v):
        table = pd.DataFrame(
            {"x": [v, 2 * v], "role": ["explanandum", "panel"]}, index=pd.Index(["e", "p"], name="classifier")
        )
        return EvaluationResult({"m": v}, {"transfer": table}, {"k": "text"})

    avg = average_results([result(1.0), result(3.0)])
    assert avg.metrics == {"m": 2.0, "m_std": 1.0}
    assert avg.tables["transfer"]["x"].tolist() == [2.0, 4.0]
    assert avg.tables["transfer"]["role"].tolist() == ["explanandum", "panel"]
    assert avg.params == {"k": "text"}
    with pytest.raises(ValueError):
        average_results([])


def test_every_suite_family_has_a_scorer():
    for suite in SUITES.values():
        for family in suite.families:
            assert family.scorer_class().family
