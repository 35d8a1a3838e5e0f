"""No training wasted: the persistent cache across searches and resumes, pre-screen rejections with reasons."""

from gpengine.config import build_config
from gpengine.journal import read_journal
from gpengine.prescreen import REASONS
from gpengine.search import Search


def make(overrides=(), seed=1):
    cfg, opts = build_config(evaluator="symreg", overrides=["population=20", "generations=3", "tracking=false",
                                                            "cache=true", *overrides], seed=seed)
    return Search(cfg, opts)


def results(search):
    return [(str(i.expr), i.budget, i.result.fitness) for i in search.individuals]


def test_a_second_search_trains_nothing():
    for extra in ([], ["fidelity=sh", "min_budget=0.1"]):
        first = make(extra)
        first.run()
        assert first.candidates.evaluations > 0
        second = make(extra)
        second.run()
        assert second.search_id != first.search_id
        assert second.candidates.evaluations == 0, extra  # every result came from the store
        assert results(second) == results(first)
        assert all(i.cached for i in second.individuals)


def test_the_cache_is_keyed_by_evaluator_configuration():
    make().run()
    other = make(["target=x**2"])
    other.run()
    assert other.candidates.evaluations > 0
    assert not any(i.cached and i.operator.startswith("init") for i in other.individuals[:1])


def test_a_data_file_edited_between_two_searches_is_a_cache_miss(tmp_path):
    data = tmp_path / "data.csv"
    def search_on(target):
        data.write_text("".join(f"{k / 10},{target(k / 10)}\n" for k in range(10)))
        s = make([f"data={data}", "population=6", "generations=0"])
        s.run()
        return s
    first = search_on(lambda x: x * x)
    assert first.candidates.evaluations > 0
    again = search_on(lambda x: x * x)  # the same file: answered from the store
    assert again.candidates.evaluations == 0
    edited = search_on(lambda x: 100 * x)  # the same options, other numbers in the file
    assert edited.candidates.evaluations == first.candidates.evaluations
    assert not any(i.cached for i in edited.individuals)


def test_with_dedup_none_a_second_search_trains_and_counts_every_proposal_again():
    # dedup=none keys results by record id: another search's record #5 is not this one's
    for mode in ("generational", "async"):
        first = make(["dedup=none", f"mode={mode}", "population=8", "generations=1"])
        first.run()
        second = make(["dedup=none", f"mode={mode}", "population=8", "generations=1"])
        second.run()
        assert second.candidates.evaluations == first.candidates.evaluations > 0, mode
        assert not any(i.cached for i in second.individuals), mode


def test_a_resumed_search_fills_the_store_for_later_searches():
    part = make(["generations=1"], seed=4)
    part.run()
    resumed = Search.resume(part.search_id, overrides={"generations": 3})
    resumed.run()
    later = make(["generations=3"], seed=4)
    later.run()
    assert later.candidates.evaluations == 0
    assert results(later) == results(resumed)


def test_prescreen_rejections_are_recorded_with_their_reason(tmp_path):
    cfg, opts = build_config(evaluator="symreg", overrides=[
        "population=20", "generations=3", "tracking=false", "strategy=gaaf", "primitives=gaaf", "prescreen=true",
        "target=sin(x)+x"], seed=2)
    s = Search(cfg, opts)
    out = s.run()
    rejected = [i for i in out.individuals if i.status == "rejected"]
    assert rejected and s.candidates.rejections == sum(1 for i in rejected if not i.cached)
    for r in rejected:
        assert r.result.message.startswith("pre-screen: ")
        assert r.result.message[len("pre-screen: "):] in REASONS
        assert r.result.cost == 0.0
    assert not any(p.status == "rejected" for p in s.population)
    journal = read_journal(tmp_path / "runs" / out.search_id / "journal.jsonl")
    assert [j.result.message for j in journal if j.status == "rejected"] == [r.result.message for r in rejected]


def test_a_cache_folder_that_cannot_hold_the_store_is_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gpengine.cli import main

    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "results.sqlite").write_text("not a database\n")
    for cache, reason in ((tmp_path / "a-file", "File exists"), (tmp_path / "junk", "file is not a database")):
        monkeypatch.setenv("GPENGINE_CACHE", str(cache))
        res = CliRunner().invoke(main, ["run", "-e", "symreg", "-q", "--no-tracking", "--set", "population=4",
                                        "--set", "cache=true"])
        assert res.exit_code == 2 and res.output.strip().splitlines() == [
            f"error: cannot open the result cache {cache / 'results.sqlite'}: {reason}; point $GPENGINE_CACHE "
            "at a writable folder, or set cache=false"], res.output
    assert (tmp_path / "a-file").read_text() == "mine"
    assert (tmp_path / "junk" / "results.sqlite").read_text() == "not a database\n"
