from adflywheel.cli.app import app

app()
