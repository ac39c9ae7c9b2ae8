"""Fault injection with a recorded history, a checker and a report (issue 5; `kraft chaos`).

    chaos/history.py   the recorded history: operations (invoke / ok / fail / info), fault
                       windows, and the final state read after healing — JSON lines on disk
    chaos/proxy.py     the network: a TCP proxy per directed link between nodes, driven by
                       the harness (pass, blackhole, one-way, delay, loss)
    chaos/checker.py   pure: a history and a final state in, a verdict with examples out
    chaos/report.py    the run's report: verdict, faults, unavailability per fault, and a
                       PNG of throughput and latency over time with fault windows shaded
    chaos/cluster.py   a cluster of node processes whose inter-node links run through the
                       proxies
    chaos/nemesis.py   faults drawn from a seed: kill/restart, pause/resume, partitions,
                       slow links, full disk, rolling restart, wiped data directory
    chaos/workload.py  acks=all producers of unique values, consumers, admin operations
    chaos/run.py       one run: start, load, faults, heal, final reads, check, report

Network faults go through proxies the harness owns (docs/reliability.md says why), so runs
need no root and touch only loopback.
"""
