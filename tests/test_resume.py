"""Kill -9 a running search at random moments, resume it, compare with an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpengine.journal import read_journal

SEARCH = ["-e", "faults", "--seed", "3", "-q", "--set", "population=16", "--set", "generations=5",
          "--set", "delay=0.01", "--set", "cache=true", "--set", "p_const=0.1"]


def gpengine(args, cwd: Path, **popen):
    env = {**os.environ, "GPENGINE_CACHE": str(cwd / "cache"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gpengine.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return out


def search_id(cwd: Path) -> str:
    (sid,) = [p.name for p in (cwd / "runs").iterdir() if p.is_dir() and (p / "search.json").exists()]
    return sid


def records(cwd: Path):
    """Journal records without wall-clock costs (the only field that differs run to run)."""
    out = []
    for ind in read_journal(cwd / "runs" / search_id(cwd) / "journal.jsonl"):
        r = ind.result
        out.append((ind.id, str(ind.expr), ind.generation, ind.operator, ind.parent_ids, ind.canonical,
                    ind.fingerprint, ind.seed, ind.cached, r.fitness, r.status, r.message, dict(r.metrics)))
    return out


def evaluations(cwd: Path) -> list[str]:
    path = cwd / "evals.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("reference")
    finish(gpengine(["run", *SEARCH, "--no-tracking", "--set", f"log={cwd / 'evals.log'}"], cwd))
    return cwd


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.15, 0.45, 0.8])
def test_sigkill_then_resume_loses_nothing_and_repeats_nothing(reference, tmp_path, fraction):
    ref_records = records(reference)
    ref_evals = evaluations(reference)
    cwd = tmp_path
    proc = gpengine(["run", *SEARCH, "--no-tracking", "--set", f"log={cwd / 'evals.log'}"], cwd,
                    start_new_session=True)
    # Wait until about `fraction` of the evaluations ran, then a little more, so the
    # kill lands at a different point of a batch each time.
    target = int(fraction * len(ref_evals))
    deadline = time.monotonic() + 60
    while len(evaluations(cwd)) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.05))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    sid = search_id(cwd)
    before = len(read_journal(cwd / "runs" / sid / "journal.jsonl"))
    finish(gpengine(["resume", sid], cwd))
    assert records(cwd) == ref_records, f"killed after {before} journaled individuals"
    evals = evaluations(cwd)
    # each evaluation ran once; only the one in flight at the kill may have run twice
    assert sorted(set(evals)) == sorted(set(ref_evals))
    assert len(evals) - len(ref_evals) <= 1


@pytest.mark.slow
def test_resume_completes_mlflow_records(tmp_path):
    cwd = tmp_path
    proc = gpengine(["run", *SEARCH], cwd, start_new_session=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not list(cwd.glob("runs/*/checkpoint.pkl")):
        time.sleep(0.01)
    time.sleep(0.3)  # into the next generation, tracker busy
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    sid = search_id(cwd)
    finish(gpengine(["resume", sid], cwd))
    journal = read_journal(cwd / "runs" / sid / "journal.jsonl")
    from gpengine.tracking import store
    from gpengine.tracking.readback import find_search, load_individuals

    client = store.client(store.default_uri(cwd), create=False)
    run = find_search(client, sid)
    rows = load_individuals(client, run)
    ids = [int(r["id"]) for r in rows]
    assert sorted(ids) == [i.id for i in journal], "MLflow must hold every journaled individual exactly once"
    runs = client.search_runs([run.info.experiment_id], f"tags.gp.search_id = '{sid}'")
    assert len([r for r in runs if r.data.tags.get("mlflow.parentRunId") is None]) == 1, "one search run"


def test_resume_of_unknown_search_is_a_clear_error(tmp_path):
    proc = gpengine(["resume", "nope"], tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip().splitlines()[-1].startswith("error: no search at")


def test_resume_of_a_damaged_journal_names_the_line_and_cuts_nothing(tmp_path):
    from click.testing import CliRunner

    from gpengine.cli import main

    res = CliRunner().invoke(main, ["run", "-e", "symreg", "-q", "--no-tracking", "--set", "population=6",
                                    "--set", "generations=1"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "runs" / search_id(tmp_path) / "journal.jsonl"
    lines = path.read_bytes().split(b"\n")
    for damage in (b"{not json", b'{"id": 3}', b"\xff\xfe"):
        path.write_bytes(b"\n".join(lines[:2] + [damage] + lines[3:]) + b'{"id": 9, "expr"')  # and a torn tail
        before = path.read_bytes()
        res = CliRunner().invoke(main, ["resume", search_id(tmp_path), "-q"])
        out = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(out) == 1, res.output
        assert out[0].startswith(f"error: journal {path.relative_to(tmp_path)} is damaged at line 3 ("), out[0]
        assert path.read_bytes() == before  # not even the torn tail is cut


def test_resume_of_an_unreadable_search_file_is_one_line(tmp_path):
    from click.testing import CliRunner

    from gpengine.cli import main

    (tmp_path / "runs" / "odd" / "search.json").mkdir(parents=True)
    res = CliRunner().invoke(main, ["resume", "odd", "-q"])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [
        "error: runs/odd/search.json cannot be read: Is a directory"], res.output


class _SnapshotAt:
    """Copies the search's folder when the `n`-th individual is recorded: what kill -9 at that moment
    leaves on disk (journal, last checkpoint), while the search itself runs on as the reference."""

    def __init__(self, n: int, source: Path, copy: Path):
        self.n, self.source, self.copy = n, source, copy
        self.seen = 0

    def on_individual(self, event):
        self.seen += 1
        if self.seen == self.n:
            import shutil

            shutil.copytree(self.source, self.copy)


@pytest.mark.parametrize("mode, at", [
    ("steady_state", 5), ("steady_state", 14), ("steady_state", 22), ("async", 5), ("async", 14), ("async", 22),
])
def test_resume_with_other_jobs_gives_the_uninterrupted_search(tmp_path, mode, at):
    """Steady state breeds `jobs` children a batch, async keeps `jobs` in flight: a resume with another
    -j used to continue as a different search. Now it keeps the original shape on the new workers."""
    from gpengine.config import build_config
    from gpengine.search import Search

    def journal(runs, sid):
        return [(i.id, str(i.expr), i.generation, i.operator, i.parent_ids, i.result.fitness)
                for i in read_journal(Path(runs) / sid / "journal.jsonl")]

    cfg, opts = build_config(evaluator="symreg", seed=5, jobs=2, backend="sequential", overrides=[
        "population=9", "generations=3", f"mode={mode}", "tracking=false", "points=8", f"runs_dir={tmp_path / 'a'}"])
    sid = "resume-jobs"
    snap = _SnapshotAt(at, tmp_path / "a" / sid, tmp_path / "b" / sid)
    ref = Search(cfg, opts, listeners=[snap], search_id=sid).run()
    assert len(ref.individuals) > at
    resumed = Search.resume(sid, runs_dir=str(tmp_path / "b"), overrides={"jobs": 1})
    assert resumed.config.jobs == 1
    resumed.run()
    assert journal(tmp_path / "b", sid) == journal(tmp_path / "a", sid)


class _InterruptAt:
    """Ctrl-C arriving when the `n`-th individual is recorded, in the middle of a generation."""

    def __init__(self, n: int):
        self.n, self.seen = n, 0

    def on_individual(self, event):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize("mode, at", [
    ("generational", 13), ("steady_state", 5), ("steady_state", 14), ("async", 5), ("async", 14), ("async", 22),
])
def test_ctrl_c_mid_generation_then_resume_gives_the_uninterrupted_search(tmp_path, mode, at):
    """An interrupt keeps the last generation's checkpoint (the journal holds what came after, as
    after kill -9): a checkpoint taken mid-generation made the resume start a new generation there."""
    from gpengine.config import build_config
    from gpengine.search import Search

    def journal(runs, sid):
        return [(i.id, str(i.expr), i.generation, i.operator, i.parent_ids, i.result.fitness)
                for i in read_journal(Path(runs) / sid / "journal.jsonl")]

    def config(runs):
        return build_config(evaluator="symreg", seed=5, jobs=2, backend="sequential", overrides=[
            "population=9", "generations=3", f"mode={mode}", "tracking=false", "points=8", f"runs_dir={runs}"])

    Search(*config(tmp_path / "a"), search_id="s").run()
    with pytest.raises(KeyboardInterrupt):
        Search(*config(tmp_path / "b"), listeners=[_InterruptAt(at)], search_id="s").run()
    assert 0 < len(read_journal(tmp_path / "b" / "s" / "journal.jsonl")) < len(journal(tmp_path / "a", "s"))
    Search.resume("s", runs_dir=str(tmp_path / "b")).run()
    assert journal(tmp_path / "b", "s") == journal(tmp_path / "a", "s")


@pytest.mark.parametrize("extra, at", [([], 14), ([], 22), (["fidelity=sh", "min_budget=0.25"], 20),
                                       (["replicates=2"], 24)])
def test_async_resume_runs_nothing_the_journal_holds(tmp_path, extra, at):
    """Kill -9 mid-generation in async mode, no persistent cache: what was journaled after the last
    checkpoint is integrated as it was. The resume used to train all of it again (ids are given at
    integration there, so the generational loop's match by id never found it)."""
    from gpengine.config import build_config
    from gpengine.search import Search

    def journal(runs):
        return [(i.id, str(i.expr), i.generation, i.operator, i.parent_ids, i.seed, i.cached, i.result.fitness)
                for i in read_journal(Path(runs) / "s" / "journal.jsonl")]

    log = tmp_path / "evals.log"
    cfg, opts = build_config(evaluator="faults", seed=5, jobs=1, backend="sequential", overrides=[
        "population=9", "generations=3", "mode=async", "tracking=false", "cache=false", "points=8",
        f"log={log}", f"runs_dir={tmp_path / 'a'}", *extra])
    Search(cfg, opts, listeners=[_SnapshotAt(at, tmp_path / "a" / "s", tmp_path / "b" / "s")], search_id="s").run()
    kept = read_journal(tmp_path / "b" / "s" / "journal.jsonl")
    state = __import__("pickle").loads((tmp_path / "b" / "s" / "checkpoint.pkl").read_bytes())
    after = [i for i in kept[state["n_individuals"]:] if not i.cached and i.status != "rejected"]
    assert after, "the snapshot should hold evaluations journaled after the checkpoint"
    ran_before = len(log.read_text().splitlines())
    Search.resume("s", runs_dir=str(tmp_path / "b")).run()
    assert journal(tmp_path / "b") == journal(tmp_path / "a")
    rerun = {int(line.split("\t")[1]) for line in log.read_text().splitlines()[ran_before:]}
    assert not rerun & {i.seed for i in after}, "journaled evaluations were run again"


@pytest.mark.parametrize("at", [12, 25])
def test_async_result_waiting_its_turn_survives_an_interrupt(tmp_path, monkeypatch, at):
    """Deterministic async integrates in submission order, so a finished evaluation may wait behind
    the oldest one; it is committed to the persistent store as it arrives, not when its turn comes,
    so an interrupt then loses nothing that finished (it used to be trained again)."""
    from gpengine.config import build_config
    from gpengine.search import Search

    def journal(runs):
        return [(i.id, str(i.expr), i.generation, i.operator, i.parent_ids, i.seed, i.cached, i.result.fitness)
                for i in read_journal(Path(runs) / "s" / "journal.jsonl")]

    def config(runs, log):
        return build_config(evaluator="faults", seed=5, jobs=1, backend="sequential", overrides=[
            "population=9", "generations=3", "mode=async", "async_window=3", "tracking=false", "cache=true",
            "points=8", f"log={log}", f"runs_dir={runs}"])

    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache-a"))
    Search(*config(tmp_path / "a", tmp_path / "a.log"), search_id="s").run()
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache-b"))  # nothing shared with the reference
    log = tmp_path / "b.log"
    with pytest.raises(KeyboardInterrupt):
        Search(*config(tmp_path / "b", log), listeners=[_InterruptAt(at)], search_id="s").run()
    ran = [line.split("\t")[1] for line in log.read_text().splitlines()]  # sequential: every one finished
    Search.resume("s", runs_dir=str(tmp_path / "b")).run()
    assert journal(tmp_path / "b") == journal(tmp_path / "a")
    again = [line.split("\t")[1] for line in log.read_text().splitlines()[len(ran):]]
    assert not set(again) & set(ran), "an evaluation that had finished ran again"
    assert sorted(ran + again) == sorted(line.split("\t")[1] for line in (tmp_path / "a.log").read_text().splitlines())


@pytest.mark.parametrize("mode", ["generational", "steady_state", "async"])
def test_journaled_reevaluations_count_against_the_budget_after_a_resume(tmp_path, mode):
    """Ctrl-C among the elites' re-evaluations (replicates=2): the resume takes the journaled ones
    as they were, and they must count as the evaluations they were. They used to count nothing,
    so the resumed search ran past max_evaluations and ended as another search."""
    from gpengine.config import build_config
    from gpengine.search import Search

    def journal(runs):
        return [(i.id, str(i.expr), i.generation, i.operator, i.parent_ids, i.seed, i.result.fitness)
                for i in read_journal(Path(runs) / "s" / "journal.jsonl")]

    def config(runs):
        return build_config(evaluator="faults", seed=5, jobs=1, backend="sequential", overrides=[
            "population=9", "generations=3", "replicates=2", f"mode={mode}", "max_evaluations=30",
            "tracking=false", "points=8", f"runs_dir={runs}"])

    ref = Search(*config(tmp_path / "a"), search_id="s").run()
    assert [i.operator for i in ref.individuals[9:12]] == ["reeval"] * 3
    with pytest.raises(KeyboardInterrupt):  # at the second re-evaluation of generation 0
        Search(*config(tmp_path / "b"), listeners=[_InterruptAt(11)], search_id="s").run()
    resumed = Search.resume("s", runs_dir=str(tmp_path / "b")).run()
    assert [h.evaluations for h in resumed.history] == [h.evaluations for h in ref.history]
    assert journal(tmp_path / "b") == journal(tmp_path / "a")


def test_replicates_trained_before_an_interrupt_are_kept_in_the_store(tmp_path, monkeypatch):
    """Ctrl-C in the middle of the elites' re-evaluations, persistent cache on: each replicate is
    committed to the store as it finishes, as every other evaluation is, so the resume trains only
    those that had not finished (the whole batch used to be committed at its end, or not at all)."""
    import gpengine.executor as executor_module
    from gpengine.config import build_config
    from gpengine.search import Search

    def journal(runs):
        return [(i.id, str(i.expr), i.generation, i.operator, i.parent_ids, i.seed, i.result.fitness)
                for i in read_journal(Path(runs) / "s" / "journal.jsonl")]

    def config(runs, log):
        return build_config(evaluator="faults", seed=5, jobs=1, backend="sequential", overrides=[
            "population=9", "generations=2", "replicates=2", "cache=true", "tracking=false", "points=8",
            f"log={log}", f"runs_dir={runs}"])

    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache-a"))
    ref = Search(*config(tmp_path / "a", tmp_path / "a.log"), search_id="s").run()
    assert [i.operator for i in ref.individuals[9:12]] == ["reeval"] * 3 and ref.history[0].evaluations == 12

    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache-b"))
    calls = []
    real = executor_module.run_task

    def interrupted(spec, task):  # Ctrl-C once the first replicate of generation 0 is trained
        calls.append(task)
        if len(calls) == 11:
            raise KeyboardInterrupt
        return real(spec, task)

    monkeypatch.setattr(executor_module, "run_task", interrupted)
    log = tmp_path / "b.log"
    with pytest.raises(KeyboardInterrupt):
        Search(*config(tmp_path / "b", log), search_id="s").run()
    monkeypatch.setattr(executor_module, "run_task", real)
    ran = log.read_text().splitlines()
    resumed = Search.resume("s", runs_dir=str(tmp_path / "b")).run()
    again = log.read_text().splitlines()[len(ran):]
    assert not {line.split("\t")[1] for line in again} & {line.split("\t")[1] for line in ran}, \
        "a replicate trained before the interrupt was trained again"
    assert journal(tmp_path / "b") == journal(tmp_path / "a")
    assert [h.evaluations for h in resumed.history] == [h.evaluations for h in ref.history]


def test_a_resume_reads_each_journal_record_once_and_cuts_a_torn_tail(tmp_path, monkeypatch):
    """The journal was parsed twice on resume (once only to count it, by the Journal listener),
    which doubled the start-up of a resume of a long cheap search: 30 s for 120,000 records."""
    import gpengine.journal as journal_module
    from gpengine.config import build_config
    from gpengine.search import Search

    def config():
        return build_config(evaluator="symreg", seed=4, jobs=1, backend="sequential", overrides=[
            "population=8", "generations=2", "tracking=false", f"runs_dir={tmp_path}"])

    ref = Search(*config(), search_id="s").run()
    path = tmp_path / "s" / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-3]) + lines[-3][:20])  # killed mid-write: a torn last line
    (tmp_path / "s" / "checkpoint.pkl").unlink()  # ... before its first checkpoint: the journal alone
    parsed = []
    real = journal_module.individual_from_json
    monkeypatch.setattr(journal_module, "individual_from_json", lambda line: parsed.append(1) or real(line))
    search = Search.resume("s", runs_dir=str(tmp_path))
    assert len(parsed) == len(lines) - 3  # every complete record, once
    monkeypatch.setattr(journal_module, "individual_from_json", real)
    out = search.run()
    assert [(i.id, str(i.expr), i.result.fitness) for i in read_journal(path)] == [
        (i.id, str(i.expr), i.result.fitness) for i in ref.individuals] == [
        (i.id, str(i.expr), i.result.fitness) for i in out.individuals]


# the fsync that fails first: 3, the journal's; 4, the first checkpoint's; 7, the second's (a first one is kept)
@pytest.mark.parametrize("full_at", [3, 4, 7])
def test_disk_full_stops_with_one_line_saying_how_to_resume_and_loses_nothing(tmp_path, monkeypatch, full_at):
    """A write error (disk full) in the middle of a search used to end it with a traceback, exit status 1,
    no resume command, and a checkpoint.pkl.tmp left taking space."""
    import errno

    from click.testing import CliRunner

    from gpengine.cli import main

    args = ["run", "-e", "symreg", "-q", "--no-tracking", "--seed", "6", "--set", "population=10",
            "--set", "generations=6"]
    ref = CliRunner().invoke(main, [*args, "--set", f"runs_dir={tmp_path / 'ref'}"])
    assert ref.exit_code == 0, ref.output
    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == full_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    res = CliRunner().invoke(main, args)
    monkeypatch.setattr(os, "fsync", real)
    sid = search_id(tmp_path)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith(f"error: cannot write runs/{sid}/") and "No space left on device" in lines[0]
    assert lines[0].endswith(f"continue with: gpengine resume {sid}")
    assert {p.name for p in (tmp_path / "runs" / sid).iterdir()} <= {"checkpoint.pkl", "journal.jsonl", "search.json"}
    again = CliRunner().invoke(main, ["resume", sid, "-q"])
    assert again.exit_code == 0, again.output

    def journal(path):
        return [(i.id, str(i.expr), i.operator, i.parent_ids, i.result.fitness) for i in read_journal(path)]

    (ref_id,) = [p.name for p in (tmp_path / "ref").iterdir()]
    assert journal(tmp_path / "runs" / sid / "journal.jsonl") == journal(tmp_path / "ref" / ref_id / "journal.jsonl")


def _interrupted_symreg(tmp_path, at: int = 25):
    """A symreg search interrupted at its `at`-th record (the journal then runs ahead of the
    last checkpoint), and the journal of the same search run to its end."""
    from gpengine.config import build_config
    from gpengine.search import Search

    def config(runs):
        return build_config(evaluator="symreg", seed=8, jobs=1, backend="sequential", overrides=[
            "population=10", "generations=4", "tracking=false", f"runs_dir={runs}"])

    ref = Search(*config(tmp_path / "ref"), search_id="s").run()
    with pytest.raises(KeyboardInterrupt):
        Search(*config(tmp_path / "runs"), listeners=[_InterruptAt(at)], search_id="s").run()
    return [(i.id, str(i.expr), i.result.fitness) for i in ref.individuals]


def _records(path):
    return [(i.id, str(i.expr), i.result.fitness) for i in read_journal(path)]


def test_a_renamed_search_folder_resumes_in_place(tmp_path):
    """`gpengine resume NAME` of a folder renamed (or copied) from the search id used to read it and
    continue the search in a new folder named after the id, leaving NAME as it was."""
    from click.testing import CliRunner

    from gpengine.cli import main

    expected = _interrupted_symreg(tmp_path)
    (tmp_path / "runs" / "s").rename(tmp_path / "runs" / "best try")
    res = CliRunner().invoke(main, ["resume", "best try"])
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["best try"]
    assert _records(tmp_path / "runs" / "best try" / "journal.jsonl") == expected
    assert res.stdout.strip().splitlines()[-1] == "journal and checkpoint in runs/best try/ (gpengine resume 'best try')"


def test_resume_takes_the_folder_as_run_prints_it(tmp_path):
    from click.testing import CliRunner

    from gpengine.cli import main

    expected = _interrupted_symreg(tmp_path)
    res = CliRunner().invoke(main, ["resume", "runs/s/", "-q"])
    assert res.exit_code == 0, res.output
    assert _records(tmp_path / "runs" / "s" / "journal.jsonl") == expected


def test_a_journal_cut_short_of_its_checkpoint_says_how_to_resume_from_the_journal_alone(tmp_path):
    from click.testing import CliRunner

    from gpengine.cli import main

    expected = _interrupted_symreg(tmp_path)
    folder = tmp_path / "runs" / "s"
    data = (folder / "journal.jsonl").read_bytes()
    (folder / "journal.jsonl").write_bytes(data[:data.index(b'{"id": 9,')] + b'{"id": 9, "ex')  # to record 9
    res = CliRunner().invoke(main, ["resume", "s", "-q"])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [
        "error: journal of s has 9 records, checkpoint expects 19 (the journal was cut short); "
        "move runs/s/checkpoint.pkl away to resume from the journal alone"], res.output
    (folder / "checkpoint.pkl").rename(tmp_path / "checkpoint.pkl")  # as told
    res = CliRunner().invoke(main, ["resume", "s", "-q"])
    assert res.exit_code == 0, res.output
    assert _records(folder / "journal.jsonl") == expected


def test_a_search_still_running_cannot_be_resumed_beside_itself(tmp_path):
    """`gpengine resume` of a search running in another terminal: both appended to its journal (ids
    written twice), and every later resume stopped on a KeyError."""
    from click.testing import CliRunner

    from gpengine.cli import main
    from gpengine.config import build_config
    from gpengine.search import Search

    class ResumeMeanwhile:
        def __init__(self):
            self.seen, self.answer = 0, None

        def on_individual(self, event):
            self.seen += 1
            if self.seen == 15:  # the search is running, its journal and checkpoint on disk
                self.answer = CliRunner().invoke(main, ["resume", "s", "-q"])

    meanwhile = ResumeMeanwhile()
    config = build_config(evaluator="symreg", seed=8, jobs=1, backend="sequential", overrides=[
        "population=10", "generations=3", "tracking=false", f"runs_dir={tmp_path / 'runs'}"])
    out = Search(*config, listeners=[meanwhile], search_id="s").run()
    assert meanwhile.answer.exit_code == 2 and meanwhile.answer.output.strip().splitlines() == [
        "error: search in runs/s is running in another process; wait for it to end, or stop it (Ctrl-C, kill) "
        "before resuming it"], meanwhile.answer.output
    assert _records(tmp_path / "runs" / "s" / "journal.jsonl") == [
        (i.id, str(i.expr), i.result.fitness) for i in out.individuals]
    again = CliRunner().invoke(main, ["resume", "s", "-q"])  # the search over, it is free
    assert again.exit_code == 0, again.output


def test_a_journal_with_records_written_twice_is_one_line_not_a_key_error(tmp_path):
    from click.testing import CliRunner

    from gpengine.cli import main

    _interrupted_symreg(tmp_path)
    path = tmp_path / "runs" / "s" / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:23] + lines[20:]))  # what two processes appending to it left
    before = path.read_bytes()
    res = CliRunner().invoke(main, ["resume", "s", "-q"])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [
        "error: journal runs/s/journal.jsonl is damaged: its record 24 has id 20, expected 23 "
        "(records written twice or lost)"], res.output
    assert path.read_bytes() == before
