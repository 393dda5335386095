"""``attrsearch sweep FILE [--dry-run] [--resume] [--address ADDR] [--results DIR]``.

Order of a run: validate the sweep file (``load``), build the datasets on the driver (which checks
dataset folders) and refuse to overwrite or resume the wrong results folder, all before Ray
starts; then start (or join) Ray, prepare every Explanandum as parallel Ray tasks, run the Tuner
(or restore it with ``--resume``), rewrite the results files and print the leaderboard.
``--dry-run`` stops after validation: it prints the resolved space and the trial count and
imports neither Ray nor Optuna.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from attrsearch.errors import UserError, first_line
from attrsearch.sweep.load import Sweep, load_sweep
from attrsearch.sweep.storage import Storage

if TYPE_CHECKING:
    from attrsearch.sweep.explananda import ExplanandaPlan, ExplanandumJob

# Ray/Tune settings for the driver (setdefault: the user's environment wins).
_DRIVER_ENV = {
    # PBT's CheckpointConfig(num_to_keep) forces experiment snapshots (tuner.PBT_CHECKPOINTS); do not warn about it.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # Tune's per-trial list of checkpoints (tuner.checkpoint_config) holds each one's path without
    # a copy of its metrics (the latest checkpoint, which restores use, keeps them): a smaller snapshot.
    "TUNE_ONLY_STORE_CHECKPOINT_SCORE_ATTRIBUTE": "1",
    "RAY_DEDUP_LOGS": "0",
    # The JSON/CSV result loggers are added explicitly (tuner.build_callbacks); no TensorBoard files.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
}


def run_sweep_command(args: argparse.Namespace) -> int:
    sweep = load_sweep(Path(args.file), results=args.results)
    if args.dry_run:
        print(describe(sweep, address=args.address))
        if args.sample:
            print(sample_trials(sweep, args.sample, args.seed))
        print("dry run: nothing started")
        return 0
    return run_sweep(sweep, resume=args.resume, address=args.address, verbose=getattr(args, "verbose", 0))


def _describe_explananda(jobs: list[ExplanandumJob], plan: ExplanandaPlan) -> list[str]:
    """One line per Explanandum a run prepares, ready as the run will count it (``is_ready``): cached on
    this machine, or (shared through the sweep's storage) published there; an unreadable storage is
    said, not raised."""
    from attrsearch.sweep.explananda import is_ready

    done = "in storage" if plan.shared else "cached"
    try:
        ready: list[bool | None] = [is_ready(job, plan) for job in jobs]
    except Exception as err:  # noqa: BLE001 - missing credentials, no network, ...: a dry run reports it
        ready = [None] * len(jobs)
        count = f"not checked: the storage cannot be read ({first_line(err)})"
    else:
        count = f"{sum(ready)} {done}"
    shared = f", shared through {plan.shared}/explananda" if plan.shared else ""
    status = {None: "?", True: done, False: "to train"}
    return [f"explananda prepared once before the trials{shared}: {len(jobs)} ({count})"] + [
        f"  {job.label:24s} {job.role:12s} {status[r]}  {job.cache_path}" for job, r in zip(jobs, ready)
    ]


def sample_trials(sweep: Sweep, count: int, seed: int) -> str:
    """``count`` trials drawn with ``seed`` from the space, each validated as the trial's experiment,
    one JSON object of searched values per line (the same seed prints the same trials)."""
    import json
    import random

    from attrsearch.sweep.experiment import trial_experiment

    rng = random.Random(seed)
    lines = [f"{count} trials sampled with seed {seed}:"]
    for i in range(count):
        values = sweep.space.sample(rng)
        trial_experiment(sweep.base, values, source=f"{sweep.path}: sampled trial {i}")
        lines.append("  " + json.dumps(values, sort_keys=True, default=str))
    return "\n".join(lines)


def describe(sweep: Sweep, address: str | None = None) -> str:
    """The resolved sweep as text: space, trial count, schedule, resources, Explananda, outputs.
    ``address``: the cluster a real run would join (Explananda shared through the storage are
    reported from the storage, which is read, not from this machine's cache)."""
    from attrsearch.sweep.explananda import explananda_plan, needed_explananda

    c = sweep.config
    lines = [f"sweep {sweep.name} ({sweep.path})"]
    if c.description:
        lines.append(f"  {c.description.strip()}")
    base = c.base if isinstance(c.base, str) else "inline"
    b = sweep.base_cfg
    lines.append(
        f"base: {base}; data {b.data.dataset} {b.data.image_size}px, explanandum {b.explanandum.arch}, "
        f"explainer {b.explainer.arch}, {b.train.epochs} epochs"
    )
    lines.append("trials are ranked on the val split (evaluation.split=val); best.yaml switches to test")
    alg = c.search_alg.model_dump(exclude_none=True)
    lines.append(f"search ({_params(alg)}):" if c.search else f"search ({_params(alg)}): no searched field")
    lines += sweep.space.describe()
    for note in sweep.notes:
        lines.append(f"  note: {note}")
    if c.start_from_base:
        from attrsearch.sweep.load import base_values

        shown = ", ".join(f"{k}={v}" for k, v in base_values(sweep).items())
        lines.append(f"  first trial: the base's values ({shown})")
    objectives = ", ".join(f"{o} ({m})" for o, m in zip(sweep.objectives, sweep.modes))
    lines.append(f"objective: {objectives}")
    sched = c.scheduler.model_dump(exclude_none=True)
    if c.scheduler.name == "asha" and c.scheduler.max_t is None:
        sched["max_t"] = sweep.max_epochs
    on = f" on {sweep.objectives[0]}" if c.scheduler.name != "none" else ""
    lines.append(f"scheduler: {_params(sched)}{on} (time unit: epochs)")
    res = c.resources_per_trial
    concurrency = (
        f"{c.max_concurrent_trials} concurrent" if c.max_concurrent_trials else "as many concurrent as resources allow"
    )
    seeds = f", seeds {c.seeds} per trial (mean and _std reported)" if c.seeds else ""
    lines.append(
        f"trials: {sweep.num_trials()} ({_count_text(sweep)}), {concurrency}, {res.cpu:g} CPU + {res.gpu:g} GPU each{seeds}"
    )
    extras = []
    if c.max_failures:
        extras.append(f"max_failures {c.max_failures} (retries from the last checkpoint)")
    if c.time_budget_s:
        extras.append(f"time budget {c.time_budget_s:g} s")
    if extras:
        lines.append("  " + ", ".join(extras))
    jobs, notes = needed_explananda(sweep)
    lines += _describe_explananda(jobs, explananda_plan(sweep, address))
    for note in notes:
        lines.append(f"  note: {note}")
    if b.data.dataset != "shapes":
        lines.append(
            f"  note: the dry run does not open data.root ({b.data.root}); a real run checks it before Ray starts"
        )
    lines.append(
        f"results: {sweep.experiment_path}/ (trials.csv, best.yaml{', pareto.csv' if c.multi_objective else ''})"
    )
    w = c.wandb
    if w.mode == "disabled":
        lines.append("W&B: disabled")
    else:
        lines.append(
            f"W&B: {w.mode}, project {w.project}, group {w.group or sweep.name}; "
            f"runs in {sweep.experiment_path}/<trial>/wandb/"
        )
    return "\n".join(lines)


def _params(d: dict[str, Any]) -> str:
    name = d.pop("name")
    rest = ", ".join(f"{k}={v}" for k, v in d.items())
    return f"{name} ({rest})" if rest else name


def _count_text(sweep: Sweep) -> str:
    samples = sweep.config.samples
    grid = sweep.space.grid_size()
    if sweep.config.search_alg.name in ("random", "grid") and sweep.config.scheduler.name != "pbt" and grid > 1:
        return f"{grid} grid points x num_samples {samples}"
    return f"num_samples {samples}"


def _check_results_folder(sweep: Sweep, resume: bool) -> None:
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


def _check_storage(sweep: Sweep) -> None:
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


def _check_files(sweep: Sweep) -> None:
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


def _check_resources(sweep: Sweep, address: str | None) -> None:
    """A trial must fit on one node: the embedded Ray has this machine's CPUs and GPUs; a cluster
    (``--address``, checked once joined) the resources of its largest alive node."""
    res = sweep.config.resources_per_trial
    if address:
        import ray

        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")] + _autoscaled_node_types()
        where = f"no node of the cluster at {address} (nor a node type its autoscaler can start)"
        cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
        gpus = max((n.get("GPU", 0.0) for n in nodes if n.get("CPU", 0.0) >= res.cpu), default=0.0)
    else:
        import torch

        where = "this machine (the embedded local Ray)"
        cpus, gpus = float(os.cpu_count() or 1), float(torch.cuda.device_count())
    if address and (res.cpu > cpus or res.gpu > gpus) and _has_autoscaler():
        need = f"{res.cpu:g} CPU + {res.gpu:g} GPU"
        print(f"note: no node of {address} fits a trial ({need}) yet; its autoscaler may start one")
        return
    if res.cpu > cpus:
        raise UserError(f"resources_per_trial.cpu: {res.cpu:g} CPUs per trial, but {where} has at most {cpus:g}")
    if res.gpu > gpus:
        raise UserError(
            f"resources_per_trial.gpu: {res.gpu:g} GPUs per trial, but {where} has {gpus:g} with enough CPUs"
        )


def _autoscaled_node_types() -> list[dict[str, float]]:
    """The resources of each node type the cluster's autoscaler may still start (none without one)."""
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - an older GCS or no autoscaler: only the alive nodes count
        return []
    if config is None:
        return []
    return [dict(group.resources) for group in config.node_group_configs if group.max_count != 0]


def _has_autoscaler() -> bool:
    """Whether the joined cluster runs Ray's (v1) autoscaler: its monitor publishes a status in the GCS."""
    try:
        from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
        from ray.experimental.internal_kv import _internal_kv_get

        return _internal_kv_get(DEBUG_AUTOSCALING_STATUS) is not None
    except Exception:  # noqa: BLE001 - no autoscaler state readable: treat as none
        return False


def _check_wandb(sweep: Sweep) -> None:
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


def _check_datasets(sweep: Sweep) -> None:
    """Build (and cache) every split of the base's dataset on the driver: checks dataset folders early."""
    from attrsearch.data import build_dataset
    from attrsearch.data.scan import scan_dataset

    scan_dataset(sweep.base_cfg.data, sweep.base_cfg.cache_dir)  # every image and mask, before anything is cached
    for split in ("train", "val", "test"):
        build_dataset(sweep.base_cfg.data, split, sweep.base_cfg.cache_dir)


def resume_command(sweep: Sweep, address: str | None) -> str:
    """The command that continues this sweep."""
    parts = ["attrsearch", "sweep", str(sweep.path), "--resume"]
    if address:
        parts += ["--address", address]
    if sweep.storage != Storage.at(sweep.config.storage):
        parts += ["--results", sweep.storage.root]
    return " ".join(parts)


# HTTP/2's client preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5): every gRPC server,
# Ray's GCS included, answers with a SETTINGS frame of its own.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A ``host:port`` address must accept a TCP connection and answer as a gRPC server (Ray's GCS)
    within ``timeout_s`` each: ``ray.init`` would otherwise retry the GCS for about a minute before
    failing, or about 30 s on a port that accepts TCP but is not Ray. ``auto`` and ``ray://`` are
    left to Ray, and so is a cluster with TLS (``RAY_USE_TLS``), whose handshake this check cannot do."""
    import socket

    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected HOST:PORT of the head node's GCS (e.g. 10.0.0.5:6379), or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            conn.sendall(_HTTP2_PREFACE)
            try:
                head = conn.recv(9)
            except TimeoutError:
                head = b""
    except OSError as err:
        raise UserError(
            f"--address {address}: no Ray head answers there ({err.strerror or type(err).__name__}); "
            "start the cluster (ray up / ray start --head) or check the address"
        ) from None
    if len(head) < 4 or head[3] != 0x04:  # byte 3 of a frame header is its type; 0x04 = SETTINGS
        raise UserError(
            f"--address {address}: no Ray head answers there (the port accepts connections but does not speak "
            "gRPC); give the head's GCS port (6379 unless `ray start --head --port` chose another)"
        )


def _start_ray(address: str | None, verbose: int = 0) -> bool:
    """Join ``address`` or start an embedded local Ray with this machine's CPUs; True if we started it.
    Workers' output (Ray's checkpoint lines, W&B's banners) reaches this console only with ``verbose``."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        _check_reachable(address)
        loopback_only = _loopback_only(address)
        try:
            with _keep_loopback(loopback_only):
                extra = {"_node_ip_address": LOOPBACK} if loopback_only else {}
                ray.init(address=address, log_to_driver=verbose > 0, **extra)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"--address {address}: cannot join the Ray cluster ({first_line(err)})") from None
    else:
        start_embedded_ray(os.cpu_count() or 1, log_to_driver=verbose > 0)
    return True


LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def _keep_loopback(active: bool = True) -> Iterator[None]:
    """While active, Ray keeps a loopback host as given. ``ray.init`` rewrites 127.0.0.1 / localhost
    (a ``_node_ip_address`` and the host of ``address``) into the machine's routable IP first
    (``ray._private.services.resolve_ip_for_localhost``, Ray 2.60); its gRPC servers then listen on
    all interfaces, and a driver cannot reach a Ray that listens on the loopback only."""
    from ray._private import services

    original = getattr(services, "resolve_ip_for_localhost", None)
    if not active or original is None:
        yield
        return
    services.resolve_ip_for_localhost = lambda host: host
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = original


def _loopback_only(address: str) -> bool:
    """Whether ``address`` (HOST:PORT) is a Ray on this machine that listens on the loopback only (an
    embedded attrsearch Ray): its host is loopback and the port does not answer on the routable IP.
    A Ray started with ``ray start --head`` listens on every interface and is joined as Ray does."""
    import ipaddress
    import socket

    host, _, port = address.rpartition(":")
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False
    from ray._private.services import get_node_ip_address

    try:
        with socket.create_connection((get_node_ip_address(), int(port)), timeout=2.0):
            return False
    except OSError:
        return True


def start_embedded_ray(num_cpus: int, log_to_driver: bool = False) -> None:
    """Start a Ray of this machine only, every server of it (GCS, raylet, object manager, workers)
    listening on 127.0.0.1 (tests/sweep/test_loopback.py checks every listening socket of the
    started processes, so a Ray upgrade that changes it fails there).

    ``address="local"``: a new Ray even when `ray start` left a cluster on this machine (``ray.init()``
    would join it). Ray binds its gRPC servers to the loopback only when the node's IP is 127.0.0.1,
    which ``_keep_loopback`` lets through. ``--address 127.0.0.1:PORT`` joins such a Ray.
    """
    import ray

    with _keep_loopback():
        ray.init(
            address="local",
            _node_ip_address=LOOPBACK,
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=log_to_driver,
        )


def apply_driver_env() -> None:
    """Ray/Tune settings of a sweep's driver, where the environment does not set them already."""
    for key, value in _DRIVER_ENV.items():
        os.environ.setdefault(key, value)


def run_sweep(sweep: Sweep, *, resume: bool = False, address: str | None = None, verbose: int = 0) -> int:
    """Run (or ``resume``) a validated sweep; returns the exit status (0 if some trial completed)."""
    apply_driver_env()
    if address:
        _check_reachable(address)  # first: an unreachable cluster is one line within seconds
    _check_storage(sweep)
    _check_results_folder(sweep, resume)
    _check_files(sweep)
    if not address:
        _check_resources(sweep, None)
    _check_wandb(sweep)
    import ray

    started = time.perf_counter()
    # A cluster is joined before the datasets are built: an address that is not a Ray head fails in seconds.
    own_ray = _start_ray(address, verbose) if address else False
    try:
        _check_datasets(sweep)
    except BaseException:
        if own_ray:
            ray.shutdown()
        raise

    from attrsearch.sweep.explananda import explananda_plan, needed_explananda, prepare_explananda
    from attrsearch.sweep.results import SWEEP_FILE, format_leaderboard, write_results, write_text
    from attrsearch.sweep.tuner import build_tuner, restore_tuner

    own_ray = _start_ray(None, verbose) or own_ray
    try:
        if address:
            _check_resources(sweep, address)
        jobs, _ = needed_explananda(sweep)
        plan = explananda_plan(sweep, address)
        res = sweep.config.resources_per_trial
        t0 = time.perf_counter()
        done = prepare_explananda(jobs, res.cpu, res.gpu, plan)
        if jobs:
            trained = ", ".join(f"{j.label} {s:.0f} s" for j, s in done) or "none"
            ready = "in storage" if plan.shared else "cached"
            print(
                f"explananda: {len(jobs)} ready ({len(jobs) - len(done)} {ready}; trained: {trained}) in {time.perf_counter() - t0:.0f} s"
            )
            if plan.shared:
                print(f"  shared through {plan.cache.location(jobs[0].entry).rsplit('/', 1)[0]}/")
        if resume:
            tuner = restore_tuner(sweep, plan)
        else:
            tuner = build_tuner(sweep, verbose=verbose, plan=plan)
            write_text(f"{sweep.experiment_path}/{SWEEP_FILE}", yaml.safe_dump(sweep.identity(), sort_keys=False))
        tuner.fit()
    finally:
        if own_ray:
            ray.shutdown()
    results = write_results(sweep)
    print(format_leaderboard(results))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(results.counts().items()))
    print(f"sweep {sweep.name}: {len(results.trials)} trials ({counts}) in {time.perf_counter() - started:.0f} s")
    for t in [t for t in results.trials if t.status == "error"][:10]:
        print(f"  error {t.trial_id}: {t.error}")
    print(f"results: {sweep.experiment_path}")
    for path in results.written:
        print(f"  {path}")
    if sweep.config.wandb.mode == "offline":
        print(f"W&B offline runs: {sweep.experiment_path}/*/wandb/offline-run-*  (upload: wandb sync <run dirs>)")
    unfinished = [t for t in results.trials if t.status in ("running", "pending", "paused")]
    if unfinished or (len(results.trials) < sweep.num_trials() and sweep.config.time_budget_s is None):
        left = max(len(unfinished), sweep.num_trials() - len(results.completed()))
        print(f"{left} trials left: continue with  {resume_command(sweep, address)}")
    return 0 if results.completed() else 1
