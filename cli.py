"""Run scorm-appliance from a source checkout: `python cli.py serve`."""

from appliance.faces.cli import cli

if __name__ == "__main__":
    cli()
