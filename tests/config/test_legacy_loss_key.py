"""The legacy ``loss:`` spelling of ``objective:``: read as the same config, one deprecation line per load."""

import logging

import pytest
import yaml

from attrsearch.config import load_experiment
from attrsearch.errors import UserError


def _write(tmp_path, data, name):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_loss_key_loads_the_objective_config_and_logs_one_deprecation_line(tmp_path, tiny_experiment, caplog):
    new = _write(tmp_path, tiny_experiment, "new.yaml")
    legacy_data = {("loss" if key == "objective" else key): value for key, value in tiny_experiment.items()}
    legacy = _write(tmp_path, legacy_data, "legacy.yaml")
    with caplog.at_level(logging.INFO, logger="attrsearch"):
        cfg_new = load_experiment(new)
    assert not caplog.records
    with caplog.at_level(logging.INFO, logger="attrsearch"):
        cfg_legacy = load_experiment(legacy)
    assert cfg_legacy == cfg_new
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    line = caplog.records[0].getMessage()
    assert str(legacy) in line and "'loss:'" in line and "'objective:'" in line
    with pytest.raises(UserError, match=r"legacy\.yaml: loss\.lambda_tv: Input should be greater than or equal to 0"):
        load_experiment(_write(tmp_path, {"loss": {"lambda_tv": -0.1}}, "legacy.yaml"))
