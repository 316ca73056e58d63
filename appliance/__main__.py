"""`python -m appliance` runs the CLI."""

from appliance.faces.cli import cli

cli()
