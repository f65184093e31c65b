"""The live plots (Qt): `board.PlotBoard` holds the tabs (`tabs`), each a few `plot.Plot`s with
their mode marks, comparison overlays, crosshair and image export. What they draw comes from the
Qt-free `geogui.gui.plotdata`."""
