"""The terminal commands: `geogui-train` (train), `geogui-export` (export), `geogui-control`
(control), the torchrun rank side (torchrun), and what only a terminal shows (terminal).
Each drives runs through `geogui.rundir.driver`, as the app does."""
