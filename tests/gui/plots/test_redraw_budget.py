import pytest

from geogui.gui.plots.redraw_budget import RedrawBudget, TimedGraphicsLayoutWidget


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_costly_redraws_are_spaced_to_keep_drawing_under_the_fraction():
    clock = FakeClock()
    budget = RedrawBudget(fraction=0.05, clock=clock)
    assert budget.ready()
    started = clock.now - 0.010
    budget.spend(0.010)  # 10 ms of setData, just finished
    budget.add(0.010)  # and 10 ms of paint: 20 ms of drawing in all
    clock.now += 0.2
    assert not budget.ready()
    clock.now = started + 0.020 / 0.05 - 0.001
    assert not budget.ready()
    clock.now = started + 0.020 / 0.05 + 0.001  # 20 ms out of 400 ms elapsed = 5 %
    assert budget.ready()


def test_cheap_redraws_are_not_delayed():
    clock = FakeClock()
    budget = RedrawBudget(fraction=0.05, clock=clock)
    budget.spend(0.0001)
    clock.now += 0.05  # the next 20 Hz tick
    assert budget.ready()


def test_fraction_is_validated():
    with pytest.raises(ValueError):
        RedrawBudget(fraction=0)


def test_paints_are_charged_to_the_budget(qtbot):
    clock = FakeClock()
    budget = RedrawBudget(fraction=0.5, clock=clock)
    widget = TimedGraphicsLayoutWidget(budget)
    qtbot.addWidget(widget)
    widget.addPlot().plot(list(range(1000)))
    widget.resize(300, 200)
    widget.show()
    qtbot.waitExposed(widget)
    budget.spend(0.0)
    before = budget._next_allowed
    widget.grab()  # renders through paintEvent
    assert budget._next_allowed > before  # the paint's cost pushed the next redraw out
