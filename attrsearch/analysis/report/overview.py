"""The table sections: the sweep's summary, the leaderboard of completed trials and the recommendation
(the configuration to train, the trials it could not be told apart from, the ranges near the best).
"""

from __future__ import annotations

from attrsearch.analysis import stats
from attrsearch.analysis.report.fragments import _arrow, _caption, _esc, _num, _table, _value_text, _why
from attrsearch.analysis.results import Results, Trial, finite, metric_direction, trial_times


def section_summary(r: Results, finished: list[Trial]) -> str:
    """Space, search algorithm, scheduler, budget, seeds, trials by status, wall time, best per objective."""
    s = r.sweep
    space_rows = [[_esc(p), _esc(d.describe())] for p, d in s.space.items()]
    alg = ", ".join(f"{k}={v}" for k, v in s.search_alg.items() if k != "name" and v is not None)
    sched = ", ".join(f"{k}={v}" for k, v in s.scheduler.items() if k != "name" and v is not None)
    budget = f"num_samples {s.num_samples}" if s.num_samples else "num_samples default"
    if s.time_budget_s:
        budget += f", time budget {s.time_budget_s:g} s"
    res = ", ".join(f"{v:g} {k.upper()}" for k, v in s.resources.items() if isinstance(v, (int, float)))
    times = [x for x in (trial_times(t) for t in r.trials) if x]
    wall = (
        f"{max(e for _, e in times) - min(b for b, _ in times):.0f} s (first trial start to last report)"
        if times
        else "unknown (no result.json)"
    )
    counts = ", ".join(f"{n} {st}" for st, n in sorted(r.counts().items()))
    seeds = (
        f"{s.seed_count} per configuration ({', '.join(map(str, s.seeds))}): every metric is a mean over seeds"
        if s.seeds
        else "1 (no seed repeats)"
    )
    facts = [
        ["search algorithm", _esc(f"{s.search_alg.get('name')} ({alg})" if alg else s.search_alg.get("name"))],
        ["scheduler", _esc(f"{s.scheduler.get('name')} ({sched})" if sched else s.scheduler.get("name"))],
        ["budget", _esc(f"{budget}; {res} per trial" if res else budget)],
        ["seeds", _esc(seeds)],
        ["trials", _esc(counts)],
        ["wall time", _esc(wall)],
        ["objectives", _esc(", ".join(f"{o} ({_arrow(o)})" for o in s.objectives))],
    ]
    best_rows = []
    for o in s.objectives:
        ranked = stats.ranked(r.by_status("completed"), o, metric_direction(o) or "max")
        if ranked:
            t = ranked[0]
            std = t.metrics.get(f"{o}_std")
            best_rows.append(
                [_esc(o), _esc(_arrow(o)), _esc(t.trial_id), f'<td class="num">{_num(t.metrics[o])}</td>', _num(std)]
            )
        else:
            best_rows.append([_esc(o), _esc(_arrow(o)), "no completed trial", "–", "–"])
    out = _table(None, facts)
    out += "<h3>Search space</h3>" + (
        _table(["field", "distribution"], space_rows) if space_rows else _why("Nothing was searched.")
    )
    out += "<h3>Best completed trial per objective (validation split)</h3>"
    out += _table(["objective", "direction", "trial", "value", "seed std"], best_rows)
    errors = r.by_status("error")
    if errors:
        out += "<h3>Failed trials</h3>" + _table(
            ["trial", "error"], [[_esc(t.trial_id), _esc(t.error)] for t in errors[:10]]
        )
    for note in r.notes:
        out += _why(note)
    return out


def section_leaderboard(r: Results, top: int = 20) -> str:
    """Completed trials ranked by the first objective (mean ± seed std, 95% CI), early-stopped ones apart."""
    objs = r.sweep.objectives
    completed, stopped = stats.leaderboard(r, objs, top=top)
    params = list(r.sweep.space)
    n = r.sweep.seed_count

    def rows(board: list[stats.Row], cls: str) -> list[list[str]]:
        out = []
        for row in board:
            cells = [
                str(row.rank),
                f'<td class="{cls}">{_esc(row.trial.trial_id)}</td>',
                _esc(row.trial.status),
                _num(row.trial.epochs),
            ]
            for o in objs:
                mean, std, lo, hi = row.cells[o]
                text = _num(mean) + (f" ± {_num(std, 2)}" if finite(std) else "")
                if finite(lo):
                    text += f"<br><small>95% CI [{_num(lo)}, {_num(hi)}]</small>"
                cells.append(f'<td class="num">{text}</td>')
            cells += [_esc(_value_text(row.trial.values.get(p, ""))) for p in params]
            out.append(cells)
        return out

    header = (
        ["#", "trial", "status", "epochs"]
        + [f"{o}<br><small>{_esc(_arrow(o))}</small>" for o in objs]
        + [_esc(p).replace(".", ".<wbr>") for p in params]
    )
    ci = (
        f"mean ± std over {n} seeds with the 95% t-interval of the mean"
        if n > 1
        else "one seed per trial, so no interval"
    )
    out = _caption(
        f"Which configurations scored best on the validation split? Ranked by <b>{_esc(objs[0])}</b>; each cell is "
        f"the {ci}. "
        f"Showing the top {min(top, len(completed))} of {len(r.by_status('completed'))} completed trials."
    )
    out += (
        _table(header, rows(completed, "best"), raw=True, cls="board")
        if completed
        else _why("No trial has completed yet.")
    )
    if stopped:
        out += '<h3 class="stopped">Stopped early by the scheduler</h3>'
        out += _caption(
            "These trials were stopped before the final metric suite ran; their numbers are the per-epoch (fast suite) "
            "values at the epoch they stopped and are not comparable with the completed trials above."
        )
        out += _table(header, rows(stopped, "stopped"), raw=True, cls="board")
    return out


def section_recommendation(r: Results) -> str:
    """The configuration to train for production, why, the ranges near the best, and the command."""
    rec = stats.recommend(r)
    if rec.trial is None:
        return _why(rec.reason)
    o = rec.objective
    out = f"<p><b>Train trial {_esc(rec.trial.trial_id)}</b>: {_esc(rec.reason)}</p>"
    versus = stats.compare_with_base(r, rec.trial, o)
    cls = "base" if versus.gain is not None and versus.gain.verdict == "beats" else "why"
    out += "<h3>Against the base configuration</h3>" + f'<p class="{cls}">{_esc(versus.sentence)}</p>'

    rows = [[_esc(p), _esc(_value_text(v))] for p, v in sorted(rec.trial.values.items())]
    out += _table(["hyperparameter", "value"], rows)
    if len(rec.candidates) > 1:
        cand = [
            [
                _esc(c["trial"]),
                f'<td class="num">{_num(c["mean"])}</td>',
                f"[{_num(c['ci'][0])}, {_num(c['ci'][1])}]",
                f'<td class="num">{_num(c["pessimistic"])}</td>',
                f'<td class="num">{_num(c["sensitivity"], 3)}</td>',
                f'<td class="num">{_num(c["robust"])}</td>',
            ]
            for c in rec.candidates
        ]
        out += "<h3>Trials not distinguishable from the best mean</h3>"
        out += _caption(
            "Neighbourhood change: mean difference of the score to the 5 most similar configurations "
            "(small = a plateau, large = a lucky spike). Robust score = worst-seed score minus that change."
        )
        out += _table(
            ["trial", f"mean {o}", "95% CI", "worst-seed score (mean ∓ std)", "neighbourhood change", "robust score"],
            cand,
        )
    out += f"<h3>Values within 1% of the best {_esc(o)} ({rec.near_best} completed trials)</h3>"
    out += _caption(
        "How precisely must each value be set? The range each hyperparameter spans among trials within 1% of the "
        "best score; "
        "a wide range means the score does not depend much on that value."
    )
    out += _table(["hyperparameter", "range"], [[_esc(p), _esc(v)] for p, v in rec.ranges.items()])
    if rec.command:
        out += "<h3>Production run (scored on the test split)</h3><pre class='cmd'>" + _esc(rec.command) + "</pre>"
    else:
        out += _why(
            "best.yaml is not written yet (the sweep writes it when it ends); rerun the report afterwards for the "
            "command."
        )
    return out


def section_reproducibility(r: Results, resamples: int) -> str:
    """Versions (of the sweep's run, from best.yaml, and of this report), sampler, scheduler, seeds, evaluators."""
    from attrsearch.analysis.importance import evaluator_settings
    from attrsearch.results import provenance
    from attrsearch.results.layout import BEST_FILE

    best = r.root / BEST_FILE
    ran = provenance.read_block(best.read_text()) if best.is_file() else {}
    now = provenance.block(r.sweep.search_alg, r.sweep.scheduler, r.sweep.seeds)
    rows = [
        ["versions when the sweep ran", _esc(ran.get("versions", f"not recorded ({BEST_FILE} has no block)"))],
        ["versions of this report", _esc(now["versions"])],
        ["search algorithm (sampler)", _esc(now["search_alg"])],
        ["scheduler", _esc(now["scheduler"])],
        ["seeds", _esc(now["seeds"])],
        ["importance evaluators", _esc(evaluator_settings(resamples))],
    ]
    return _caption(
        f"What this answer depends on. The same lines open {BEST_FILE} as comments "
        "(<code># Reproducibility: ...</code>)."
    ) + _table(None, rows)
