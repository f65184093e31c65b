"""The Qt side of geogui: the main window, settings forms, live plots and the training worker.

Nothing outside this package imports it, and nothing here imports torch: training runs in
`worker.TrainingWorker`, which imports the engine in its own thread.
"""
