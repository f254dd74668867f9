"""The benchmark helpers import and the deterministic poll simulation runs (no timings are checked)."""

from __future__ import annotations

from bench import _common, poll_efficiency


def test_poll_simulation_runs_every_policy_to_the_end() -> None:
    results = poll_efficiency.results()
    assert set(results) == {*poll_efficiency.POLICIES, poll_efficiency.QUIET}
    for runs in results.values():
        assert len(runs) == len(poll_efficiency.TIMELINES)
        assert all(o.reads >= 1 and o.delay >= 0 and o.silence > 0 for _, o in runs)


def test_results_table_has_one_line_per_row() -> None:
    rows = [_common.Row("b", "f", "1 ms", "1 ms", "< 2 ms", True)]
    assert _common.table(rows).splitlines()[-1] == "| b | f | 1 ms | 1 ms | < 2 ms | yes |"


def test_every_benchmark_module_imports() -> None:
    """run_all imports them all: a rename in one must not leave another importing the old name."""
    import bench.run_all  # noqa: F401


def test_the_ablation_knows_every_part_it_is_asked_to_take_out() -> None:
    from bench import ablated_server, ablation

    asked = {part for server in ablation.SERVERS for part in server.env.get("CUTOUT_BENCH_WITHOUT", "").split(",")}
    assert asked - {""} <= set(ablated_server.PARTS)
