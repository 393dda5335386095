"""Pre-flight checks of a sweep run, before anything is trained: storage, the results folder (new or
resumable), named files, ImageNet weights, resources per trial, the W&B login and the datasets; each
failure is one line (``UserError``).

``blockers`` runs every check that needs neither Ray nor any work and writes nothing (not even the
storage folder), and ``raise_blockers`` reports all of them in one ``UserError``, one per line, so a
sweep that cannot start for several reasons says so in one run. A real run and ``--dry-run`` run the
same checks. Each blocker is either of the sweep's inputs (a file it names, its results folder, its
storage) or of this machine (its CPUs and GPUs, the ImageNet weights in its torch cache, its W&B
login): a dry run, often made to plan a run for another machine, prints the latter and exits 2 only
for the former. With ``--address`` the resources and the weights are the cluster nodes', checked once
joined (resources) or by the trials (weights); the datasets are built once Ray is up.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from attrsearch.errors import UserError, UserErrors, first_line
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
        text = read_text(f"{sweep.experiment_path}/{SWEEP_FILE}")
        saved = yaml.safe_load(text) if text is not None else None
        if saved is not None and _started_without_base(sweep, saved):
            sweep.config = sweep.config.model_copy(update={"start_from_base": False})
            log.info("resuming with start_from_base off, as the sweep was started (before it became the default)")
        if saved is not None and saved != sweep.identity():
            raise UserError(
                f"{sweep.path}: differs from the sweep stored in {sweep.experiment_path}/{SWEEP_FILE}; "
                "resume with the file the sweep was started with"
            )


def _started_without_base(sweep: Sweep, saved: dict) -> bool:
    """Whether the stored sweep differs only by ``start_from_base: false`` where this file leaves it unset."""
    if not sweep.start_defaulted or saved.get("start_from_base") is not False:
        return False
    return saved == {**sweep.identity(), "start_from_base": False}


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
    """Local storage must be a folder this process can write (or be creatable in one: it is created only
    once every check has passed); remote storage reachable with a bucket. Writes nothing."""
    if not sweep.storage.is_local:
        _check_remote_storage(sweep.storage.root)
        return
    root = Path(sweep.storage.root).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(f"storage: {root} is a file, not a folder")
    existing = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
    if not existing.is_dir():
        raise UserError(f"storage: {root} is not writable ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"storage: {root} is not writable (no write permission on {existing})")


def create_storage(sweep: Sweep) -> None:
    """Create a local storage folder, once the pre-flight has passed."""
    if sweep.storage.is_local:
        Path(sweep.storage.root).expanduser().mkdir(parents=True, exist_ok=True)


def _searched(sweep: Sweep, field: str) -> list:
    """The base's value of ``field`` and every discrete value the space gives it, in order, once each."""
    section, name = field.split(".")
    values = [getattr(getattr(sweep.base_cfg, section), name), *(sweep.space.discrete_values(field) or [])]
    return list(dict.fromkeys(str(v) if v is not None else None for v in values))


def file_problems(sweep: Sweep) -> list[str]:
    """Every weights or checkpoint file the base or a searched value names must exist: one line each."""
    problems = []
    for field in ("explanandum.weights", "explanandum.checkpoint", "explainer.weights"):
        for value in _searched(sweep, field):
            if value is not None and value != "imagenet" and not Path(value).expanduser().is_file():
                problems.append(f"{sweep.path}: {field}: no such file {value}")
    return problems


def weights_problems(sweep: Sweep) -> list[str]:
    """ImageNet weights this machine's trials and Explanandum tasks would read from the torch hub cache:
    every Explainer architecture the sweep can pick when ``explainer.weights`` can be ``imagenet``, and
    every Explanandum to prepare that is not cached yet. One line each (``check_model_weights``)."""
    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.models import EXPLAINERS
    from attrsearch.sweep.explananda import needed_explananda
    from attrsearch.train.explanandum import check_explanandum_inputs

    problems: list[str] = []

    def collect(check, *args, **kwargs) -> None:
        try:
            check(*args, **kwargs)
        except UserError as err:
            if str(err) not in problems:
                problems.append(str(err))

    if "imagenet" in _searched(sweep, "explainer.weights"):
        from attrsearch.models.registry import check_model_weights

        for arch in _searched(sweep, "explainer.arch"):
            collect(check_model_weights, EXPLAINERS, "explainer", arch, "imagenet", read=False)
    jobs, _ = needed_explananda(sweep)
    for job in jobs:
        if job.role == "explanandum" and not job.cached:
            cfg = validate(ExperimentConfig, job.data, source=f"{sweep.path}: base")
            if cfg.explanandum.weights == "imagenet":
                collect(check_explanandum_inputs, cfg)
    return problems


def check_files(sweep: Sweep) -> None:
    """``file_problems`` as one ``UserError`` (the first)."""
    problems = file_problems(sweep)
    if problems:
        raise UserError(problems[0])


def check_resources(sweep: Sweep, address: str | None) -> None:
    """``resource_problems`` as one ``UserError``."""
    problems = resource_problems(sweep, address)
    if len(problems) > 1:
        raise UserErrors(f"{sweep.path}: a trial fits on no node:", problems)
    if problems:
        raise UserError(problems[0])


def resource_problems(sweep: Sweep, address: str | None) -> list[str]:
    """A trial must fit on one node: the embedded Ray has this machine's CPUs and GPUs; a cluster
    (``--address``, checked once joined) the resources of its largest alive node. One line per resource."""
    res = sweep.config.resources_per_trial
    if address:
        from attrsearch.sweep.ray_node import alive_node_resources

        nodes = alive_node_resources()
        where = f"no node of the cluster at {address} (nor a node type its autoscaler can start)"
        cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
        gpus = max((n.get("GPU", 0.0) for n in nodes if n.get("CPU", 0.0) >= res.cpu), default=0.0)
        with_cpus = " with enough CPUs"
    else:
        import torch

        where = "this machine (the embedded local Ray)"
        cpus, gpus = float(os.cpu_count() or 1), float(torch.cuda.device_count())
        with_cpus = ""
    if address and (res.cpu > cpus or res.gpu > gpus) and _has_autoscaler():
        need = f"{res.cpu:g} CPU + {res.gpu:g} GPU"
        log.info(f"note: no node of {address} fits a trial ({need}) yet; its autoscaler may start one")
        return []
    problems = []
    if res.cpu > cpus:
        problems.append(f"resources_per_trial.cpu: {res.cpu:g} CPUs per trial, but {where} has at most {cpus:g}")
    if res.gpu > gpus:
        problems.append(f"resources_per_trial.gpu: {res.gpu:g} GPUs per trial, but {where} has {gpus:g}{with_cpus}")
    return problems


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


@dataclass(frozen=True)
class Blocker:
    """One reason a sweep cannot start: ``machine`` when it is a property of this machine, not the sweep's."""

    text: str
    machine: bool = False


def blockers(sweep: Sweep, resume: bool, address: str | None) -> list[Blocker]:
    """Every pre-flight problem that needs neither Ray nor any work, all checks run; writes nothing."""
    found: list[Blocker] = []

    def run(check, *args, machine: bool = False) -> None:
        try:
            check(*args)
        except UserError as err:
            found.append(Blocker(str(err), machine))

    run(check_storage, sweep)
    run(check_results_folder, sweep, resume)
    found += [Blocker(text) for text in file_problems(sweep)]
    if not address:  # on a cluster these are the nodes': resources checked once joined, weights by the trials
        found += [Blocker(text, machine=True) for text in weights_problems(sweep)]
        found += [Blocker(text, machine=True) for text in resource_problems(sweep, None)]
    run(check_wandb, sweep, machine=True)
    return found


def raise_blockers(sweep: Sweep, found: list[Blocker]) -> None:
    """One ``UserError`` for ``found``: its line, or a header and one line per blocker."""
    if len(found) == 1:
        raise UserError(found[0].text)
    if found:
        header = f"{sweep.path}: {len(found)} problems stop this sweep before it starts:"
        raise UserErrors(header, [b.text for b in found])


def _has_autoscaler() -> bool:
    from attrsearch.sweep.ray_node import has_autoscaler

    return has_autoscaler()
