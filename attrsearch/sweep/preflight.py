"""Pre-flight checks of a sweep run, before anything is trained: storage, the results folder (new or
resumable), named files, resources per trial, the W&B login and the datasets; each failure is one
line (``UserError``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import yaml

from attrsearch.errors import UserError, first_line
from attrsearch.sweep.load import Sweep

log = logging.getLogger(__name__)


def check_results_folder(sweep: Sweep, resume: bool) -> None:
    from attrsearch.sweep.results import SWEEP_FILE, has_experiment_state, read_text

    exists = has_experiment_state(sweep.experiment_path)
    if resume and not exists:
        raise UserError(f"{sweep.experiment_path}: nothing to resume (no Ray experiment state); run without --resume")
    if not resume and exists:
        raise UserError(
            f"{sweep.experiment_path}: already holds sweep {sweep.name!r}; add --resume to continue it, "
            "or remove the folder / pass --results DIR to start over"
        )
    if resume:
        saved = read_text(f"{sweep.experiment_path}/{SWEEP_FILE}")
        if saved is not None and yaml.safe_load(saved) != sweep.identity():
            raise UserError(
                f"{sweep.path}: differs from the sweep stored in {sweep.experiment_path}/{SWEEP_FILE}; "
                "resume with the file the sweep was started with"
            )


def _check_remote_storage(uri: str) -> None:
    """S3 (and other URIs pyarrow opens): credentials from the environment, an existing bucket, a
    listable prefix; one line otherwise. The endpoint comes from AWS_ENDPOINT_URL (a local S3 such as
    moto or MinIO); credentials are read by pyarrow's client and never written by attrsearch."""
    import pyarrow.fs

    scheme = uri.partition(":")[0]
    if scheme in ("s3", "s3a") and not (
        (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"))
        or os.environ.get("AWS_PROFILE")
        or os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        or Path("~/.aws/credentials").expanduser().is_file()
        or os.environ.get("ATTRSEARCH_S3_INSTANCE_ROLE") == "1"
    ):
        raise UserError(
            f"storage: {uri} needs AWS credentials in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE); on an instance role set ATTRSEARCH_S3_INSTANCE_ROLE=1"
        )
    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
        bucket = path.split("/", 1)[0]
        if fs.get_file_info(bucket).type == pyarrow.fs.FileType.NotFound:
            raise UserError(f"storage: {uri}: bucket {bucket!r} does not exist (or these credentials cannot see it)")
        fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except (OSError, ValueError, pyarrow.ArrowException) as err:
        raise UserError(f"storage: {uri}: not usable ({first_line(err)})") from None


def check_storage(sweep: Sweep) -> None:
    """Local storage must be a folder this process can write; remote storage reachable with a bucket."""
    if not sweep.storage.is_local:
        _check_remote_storage(sweep.storage.root)
        return
    root = Path(sweep.storage.root)
    if root.exists() and not root.is_dir():
        raise UserError(f"storage: {root} is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".attrsearch-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"storage: {root} is not writable ({err.strerror or type(err).__name__})") from None


def check_files(sweep: Sweep) -> None:
    """Every weights or checkpoint file the base or a searched value names must exist."""
    fields = ("explanandum.weights", "explanandum.checkpoint", "explainer.weights")
    dumped = sweep.base_cfg.model_dump(mode="json")
    for field in fields:
        values = [dumped[field.split(".")[0]][field.split(".")[1]]] + list(sweep.space.discrete_values(field) or [])
        for value in values:
            if value is None or str(value) == "imagenet":
                continue
            if not Path(str(value)).expanduser().is_file():
                raise UserError(f"{sweep.path}: {field}: no such file {value}")


def check_resources(sweep: Sweep, address: str | None) -> None:
    """A trial must fit on one node: the embedded Ray has this machine's CPUs and GPUs; a cluster
    (``--address``, checked once joined) the resources of its largest alive node."""
    res = sweep.config.resources_per_trial
    if address:
        from attrsearch.sweep.ray_node import alive_node_resources

        nodes = alive_node_resources()
        where = f"no node of the cluster at {address} (nor a node type its autoscaler can start)"
        cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
        gpus = max((n.get("GPU", 0.0) for n in nodes if n.get("CPU", 0.0) >= res.cpu), default=0.0)
    else:
        import torch

        where = "this machine (the embedded local Ray)"
        cpus, gpus = float(os.cpu_count() or 1), float(torch.cuda.device_count())
    if address and (res.cpu > cpus or res.gpu > gpus) and _has_autoscaler():
        need = f"{res.cpu:g} CPU + {res.gpu:g} GPU"
        log.info(f"note: no node of {address} fits a trial ({need}) yet; its autoscaler may start one")
        return
    if res.cpu > cpus:
        raise UserError(f"resources_per_trial.cpu: {res.cpu:g} CPUs per trial, but {where} has at most {cpus:g}")
    if res.gpu > gpus:
        raise UserError(
            f"resources_per_trial.gpu: {res.gpu:g} GPUs per trial, but {where} has {gpus:g} with enough CPUs"
        )


def check_wandb(sweep: Sweep) -> None:
    if sweep.config.wandb.mode != "online" or os.environ.get("WANDB_API_KEY"):
        return
    import wandb

    try:
        logged_in = bool(wandb.Api(timeout=10).api_key)
    except Exception:  # noqa: BLE001 - any failure means no usable login
        logged_in = False
    if not logged_in:
        raise UserError(
            "wandb.mode: online needs WANDB_API_KEY in the environment or `wandb login`; or use mode: offline"
        )


def check_datasets(sweep: Sweep) -> None:
    """Build (and cache) every split of the base's dataset on the driver: checks dataset folders early."""
    from attrsearch.data import build_dataset
    from attrsearch.data.scan import scan_dataset

    scan_dataset(sweep.base_cfg.data, sweep.base_cfg.cache_dir)  # every image and mask, before anything is cached
    for split in ("train", "val", "test"):
        build_dataset(sweep.base_cfg.data, split, sweep.base_cfg.cache_dir)


def _has_autoscaler() -> bool:
    from attrsearch.sweep.ray_node import has_autoscaler

    return has_autoscaler()
