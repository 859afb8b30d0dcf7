"""``backup ... --json`` says how many requests the command sent to each location: what a
backup costs a store that bills per request, and how much catalog it read."""

from __future__ import annotations


def test_a_backup_reports_the_requests_it_sent_to_each_location(backed_up):
    backed_up.workload(10, seed=13)
    report = backed_up.ok("backup", "incremental", "--json").json()
    (location,) = backed_up.locations
    sent = report["requests"][location]
    assert set(sent) == {"list", "get", "head", "put", "delete"}
    assert sent["put"] >= 2  # the object, then its manifest entry
    assert sent["list"] >= 1 and sent["get"] >= 2  # the catalog: both entries of the chain so far
    nothing = backed_up.ok("backup", "incremental", "--json").json()
    assert nothing["skipped"] and nothing["requests"][location]["put"] == 0
