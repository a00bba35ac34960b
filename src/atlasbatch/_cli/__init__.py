"""The command line: one module per command, what they share, and the terminal display.
A front end, beside ``_api``; the only part that prints. ``atlasbatch.cli`` builds the
parser and imports a command's module only when that command runs."""
