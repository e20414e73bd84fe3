"""Markdown tables from the JSON reports of ``tools/benchmark.py``.

    python tools/analysis/benchmark_table.py REPORT.json [REPORT.json ...]

Two tables: throughput of every report (iterations/s, synthetic images/s,
the time split between the phases, peak memory, evaluation cost) and, for
the reports written with ``--compare-plain``, the ratio to the plain-PyTorch
loop (wall clock and CPU time, medians over the alternating blocks) with the
result of the loss-equality check. ``docs/benchmark.md`` shows both, made
from the reports in ``docs/benchmark_results/``.
"""
import argparse
import json
import os.path as osp
import sys
from typing import List

THROUGHPUT_HEADER = (
    '| config | batch x draws | iterations/s | images/s | ms/it generator '
    '| ms/it student | ms/it other + data | peak RSS MiB | eval ms/it |\n'
    '|---|---|---|---|---|---|---|---|---|')
RATIO_HEADER = (
    '| config | plain loop | blocks x iterations | ratio (CPU time) '
    '| ratio (wall clock) | losses equal (max abs diff) |\n'
    '|---|---|---|---|---|---|')


def load_reports(paths: List[str]) -> List[dict]:
    reports = []
    for path in paths:
        with open(path) as f:
            try:
                report = json.load(f)
            except json.JSONDecodeError as error:
                raise SystemExit(f'{path}: not a JSON report ({error})')
        if 'time_ms_per_iteration' not in report:
            raise SystemExit(f'{path}: not a tools/benchmark.py report '
                             '(no time_ms_per_iteration)')
        reports.append(report)
    return sorted(reports, key=lambda r: r['config'])


def _name(report: dict) -> str:
    return osp.splitext(osp.basename(report['config']))[0]


def _eval_cost(report: dict) -> str:
    evaluation = report.get('evaluation', {})
    if 'ms_per_train_iteration' not in evaluation:
        return 'skipped'
    return f"{evaluation['ms_per_train_iteration']:.1f}"


def throughput_table(reports: List[dict]) -> str:
    rows = [THROUGHPUT_HEADER]
    for r in reports:
        ms = r['time_ms_per_iteration']
        rows.append(
            f"| {_name(r)} | {r['batch_size']} x {r['draws_per_iteration']} "
            f"| {r['iterations_per_s']:.3f} | {r['images_per_s']:.1f} "
            f"| {ms['generator_phase']:.1f} | {ms['student_phase']:.1f} "
            f"| {ms['other'] + ms['data']:.1f} "
            f"| {r['peak_memory_mib']:.0f} | {_eval_cost(r)} |")
    return '\n'.join(rows)


def _max_diff(check: dict) -> float:
    return max(check['max_loss_diff'], check['max_state_diff'])


def ratio_table(reports: List[dict]) -> str:
    rows = [RATIO_HEADER]
    for r in reports:
        cp = r.get('compare_plain')
        if cp is None:
            continue
        check = cp['loss_check']
        equal = 'yes' if check['equal'] else 'NO'
        rows.append(
            f"| {_name(r)} | `{cp['plain_loop']}` "
            f"| {cp['blocks']} x {cp['block_iters']} "
            f"| **{cp['ratio_cpu_time']:.3f}** | {cp['ratio']:.3f} "
            f"| {equal} ({_max_diff(check):.1g}) |")
    return '\n'.join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='tools/analysis/benchmark_table.py',
        description='Markdown tables from tools/benchmark.py JSON reports')
    parser.add_argument('reports', nargs='+', help='JSON reports')
    parser.add_argument(
        '--table', choices=['throughput', 'ratio', 'both'], default='both',
        help='which table to print (default both; the ratio table lists '
        'the reports written with --compare-plain)')
    args = parser.parse_args(argv)
    reports = load_reports(args.reports)
    compared = [r for r in reports if 'compare_plain' in r]
    if args.table == 'ratio' and not compared:
        raise SystemExit('no report was written with --compare-plain')
    tables = []
    if args.table in ('throughput', 'both'):
        tables.append(throughput_table(reports))
    if args.table in ('ratio', 'both') and compared:
        tables.append(ratio_table(compared))
    print('\n\n'.join(tables))
    return 0


if __name__ == '__main__':
    sys.exit(main())
