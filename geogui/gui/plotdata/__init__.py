"""What the plots draw, with no Qt: a run's series in a level-of-detail store, smoothing, the
peak reduction to pixels, outlier fits, derived comparison values, and the tables a plot exports."""
