from geogui.engine.metrics import EvalRecord, ModeChange, RunEvent, split_at_mode_changes


def test_records_are_cut_at_each_mode_change_and_other_events_dropped():
    evals = [EvalRecord(step, 1.0, 2.7) for step in range(1, 6)]
    change = ModeChange(3, "geometric", 0.001, "standard", 0.001)
    records = [evals[0], evals[1], RunEvent(2, "paused", ""), change, evals[2], evals[3], evals[4]]
    assert list(split_at_mode_changes(records)) == [evals[:2], change, evals[2:]]
    assert list(split_at_mode_changes([change])) == [change]
    assert list(split_at_mode_changes([])) == []
