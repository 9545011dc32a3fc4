from napkit.cli import run

run()
